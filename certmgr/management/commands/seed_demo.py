"""Load demo data: two institutions, their users, sales channels and certificates.

Certificates are generated at run time (demo_pki) and go through the same parser and service
as an operator's upload, dated so that one of each status shows up: valid, expiring in 20
days, critical (3 days) and expired. Running it again changes nothing.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from certificates import services
from certificates.bundle import certificate_bundle_parse
from certificates.models import Certificate
from certmgr import demo_pki
from institutions.models import Institution, Membership
from saleschannels.models import SalesChannel
from saleschannels.services import channel_create, channel_set_ssl_mode

DEMO_PASSWORD = "certmgr-demo"

INSTITUTIONS = [
    {
        "slug": "acme-tickets",
        "name": "Acme Tickets",
        "manager": "alice",
        "viewer": "bob",
        "channels": [
            ("Acme main shop", "shop.acme-tickets.test"),
            ("Acme festival", "festival.acme-tickets.test"),
        ],
    },
    {
        "slug": "opera-house",
        "name": "Opera House",
        "manager": "carol",
        "viewer": "dave",
        "channels": [("Opera box office", "tickets.opera-house.test")],
    },
]

# (name suffix, days until expiry, lifetime in days)
CERTIFICATE_AGES = [
    ("valid", 75, 90),
    ("expiring in 20 days", 20, 90),
    ("expiring in 3 days", 3, 90),
    ("expired", -5, 90),
]


class Command(BaseCommand):
    help = "Create demo institutions, users, sales channels and certificates (idempotent)."

    def handle(self, *args, **options):
        User = get_user_model()
        if Institution.objects.filter(slug=INSTITUTIONS[0]["slug"]).exists():
            self.stdout.write("Demo data already loaded.")
        else:
            with transaction.atomic():
                self._create(User)
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write(f"Logins (password “{DEMO_PASSWORD}” for all):")
        self.stdout.write("  admin  — platform staff, sees every institution, /admin/")
        for spec in INSTITUTIONS:
            self.stdout.write(f"  {spec['manager']:<6} — manager of {spec['name']}")
            self.stdout.write(f"  {spec['viewer']:<6} — viewer of {spec['name']}")

    def _user(self, User, username: str, **extra):
        user, created = User.objects.get_or_create(username=username, defaults=extra)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user

    def _create(self, User) -> None:
        staff = self._user(
            User, "admin", is_staff=True, is_superuser=True, email="admin@platform.test"
        )
        now = demo_pki.utc_now()
        root = demo_pki.ca_create(common_name="certmgr Demo Root CA")
        intermediate = demo_pki.ca_create(common_name="certmgr Demo Intermediate CA", issuer=root)
        for spec in INSTITUTIONS:
            # Expiry digests go to the manager (the console in `make run`).
            institution = Institution.objects.create(name=spec["name"], slug=spec["slug"])
            manager = self._user(
                User, spec["manager"], email=f"{spec['manager']}@{spec['slug']}.test"
            )
            Membership.objects.create(
                user=manager, institution=institution, role=Membership.Role.MANAGER
            )
            viewer = self._user(User, spec["viewer"])
            Membership.objects.create(
                user=viewer, institution=institution, role=Membership.Role.VIEWER
            )
            hostnames = [hostname for _, hostname in spec["channels"]]
            certificates = []
            for label, days_left, lifetime in CERTIFICATE_AGES:
                not_after = now + timedelta(days=days_left)
                leaf = demo_pki.leaf_create(
                    issuer=intermediate,
                    hostnames=hostnames,
                    not_before=not_after - timedelta(days=lifetime),
                    not_after=not_after,
                )
                # Checked as of the day it was issued, as the operator would have uploaded it.
                bundle = certificate_bundle_parse(
                    certificate=leaf.certificate_pem,
                    private_key=leaf.key_pem,
                    chain=intermediate.certificate_pem,
                    now=leaf.certificate.not_valid_before_utc + timedelta(hours=1),
                )
                certificates.append(
                    services.certificate_upload(
                        institution=institution,
                        name=f"{spec['name']} — {label}",
                        kind=Certificate.Kind.SSL,
                        bundle=bundle,
                        actor=staff,
                    )
                )
            for index, (name, hostname) in enumerate(spec["channels"]):
                # Created and switched to its certificate as a manager's two saves would:
                # the SSL page's service deploys the edge files and queues a probe.
                channel = channel_create(
                    institution=institution, name=name, hostname=hostname, actor=staff
                )
                channel_set_ssl_mode(
                    channel=channel,
                    mode=SalesChannel.SslMode.UPLOADED,
                    certificate=certificates[index],
                    actor=staff,
                )
