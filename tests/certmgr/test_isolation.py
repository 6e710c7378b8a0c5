"""Tenant isolation and key secrecy, proven over every URL of the project (issue 7).

The walk takes every URL pattern from the URL resolver (tests/urlwalk.py: includes and the admin
too, so a page added later is walked without anyone listing it), fills its arguments with the
objects of the Opera House (the fixture makes one of every kind an institution can own) and
requests it with GET and POST as anonymous, Bob (viewer at Acme) and Alice (manager at Acme).
Every answer must be 404, 403, 405 or a redirect to a login page; it must be the same answer as
for an object that does not exist (no id leaks); no body may carry the Opera's names,
hostnames, fingerprints, serial numbers, merchant identifiers or settings; and nothing may
change in the database or on the edge. Charlie (manager at the Opera) gets 200 or 302 from the
same URLs, so the walk provably hit the objects rather than 404ing on everything.

No response of any walk, as an outsider or as the owner (Charlie and Alice over their own
objects, Sam over everything in the admin), nor any error page or form re-displayed after an
upload that included a key, contains private-key material: the PEM armour, a line of a stored
key's base64, its DER bytes or its Fernet token (tests/leaks.py).

A pattern whose arguments the walk does not know fails the walk with a message saying where to
teach it (ARGUMENT_KINDS); never is it skipped. A pattern that answers otherwise by design is
in EXEMPTIONS, with the reason and the test that covers it.

Staff writing through the admin's change forms, every link of every registered model pointed
at another institution's object, is walked in tests/certmgr/test_isolation_admin.py.
"""

import secrets as token_source
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin as django_admin
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import BinaryField, F, Q
from django.shortcuts import resolve_url
from django.test import Client, RequestFactory
from django.urls import URLResolver, include, path, reverse
from django.urls.resolvers import RegexPattern
from django.utils import timezone

from acme_client.models import AcmeAccount, AcmeChallenge, AcmeOrder
from acme_client.protocol import account_key_generate, account_key_pem
from api.models import ApiToken
from certificates import services
from certificates.bundle import BundleResult
from certificates.models import Certificate, CertificateRequest
from certmgr import demo_pki
from core import encryption
from institutions.models import Institution, Membership
from monitoring.models import Notification
from saleschannels import services as channel_services
from saleschannels.models import ProbeStatus, SalesChannel
from tests.apple import apple_issue, apple_sign_csr
from tests.leaks import Secrets
from tests.support import PASSWORD, errors_of, hostnames_unwrapped, upload
from tests.urlwalk import Route, routes_all

pytestmark = pytest.mark.django_db

METRICS_TOKEN = "walk-metrics-token"
# An id or slug that no object has: the answer for it is what an outsider must get.
MISSING = "999999999"
REDIRECTS = (301, 302, 303, 307, 308)
DENIALS = (403, 404, 405)


# --- what the walk knows ----------------------------------------------------------------


@dataclass
class Tenant:
    """An institution with one of every kind of object it can own."""

    institution: Institution
    manager: object
    title: str
    certificates: list[Certificate]
    requests: list[CertificateRequest]
    channels: list[SalesChannel]
    challenges: list[AcmeChallenge]
    ssl: Certificate
    proof: Certificate
    proof_bytes: bytes
    box_office: SalesChannel
    season: SalesChannel
    # Text of this institution's that no one outside it may ever be shown.
    markers: list[str] = field(default_factory=list)
    # Its API tokens (README, "API"), made by its manager in the back office, and their
    # secrets (shown once, on the page that answered the creation, and nowhere else).
    tokens: list = field(default_factory=list)
    token_secrets: list[str] = field(default_factory=list)

    @property
    def usernames(self) -> list[str]:
        return list(
            Membership.objects.filter(institution=self.institution).values_list(
                "user__username", flat=True
            )
        )


class WalkNotTaught(AssertionError):
    """A URL pattern takes an argument the walk does not know how to fill."""


@dataclass(frozen=True)
class ArgumentKind:
    """Which of an institution's objects fill the arguments of the patterns under `prefix`
    (the longest matching prefix wins) that take exactly `arguments`."""

    prefix: str
    arguments: frozenset[str]
    values: Callable[[Route, Tenant], list[dict]]
    # False when the argument names no object (an app label): no "missing object" to compare.
    names_objects: bool = True


def _admin_model(route: Route):
    """The model behind an admin page: its ModelAdmin's, found on the view."""
    callback = route.callback
    model_admin = getattr(callback, "model_admin", None)
    if model_admin is None:  # admin_view() around a ModelAdmin method keeps it __wrapped__
        model_admin = getattr(getattr(callback, "__wrapped__", None), "__self__", None)
    model = getattr(model_admin, "model", None)
    if model is None:
        raise WalkNotTaught(f"{route.label}: cannot tell which model this admin page shows")
    return model


# How to find an institution's rows of each model the admin shows.
TENANT_ROWS: dict[str, Callable[[Tenant], Q]] = {
    "certificates.Certificate": lambda tenant: Q(institution=tenant.institution),
    "certificates.CertificateRequest": lambda tenant: Q(institution=tenant.institution),
    "core.AuditEvent": lambda tenant: Q(institution=tenant.institution),
    "monitoring.Notification": lambda tenant: Q(institution=tenant.institution),
    "saleschannels.SalesChannel": lambda tenant: Q(institution=tenant.institution),
    "institutions.Institution": lambda tenant: Q(pk=tenant.institution.pk),
    "institutions.Membership": lambda tenant: Q(institution=tenant.institution),
    "auth.User": lambda tenant: Q(memberships__institution=tenant.institution),
    "auth.Group": lambda tenant: Q(user__memberships__institution=tenant.institution),
    "acme_client.AcmeOrder": lambda tenant: Q(channel__institution=tenant.institution),
    "acme_client.AcmeChallenge": lambda tenant: Q(hostname__in=tenant_hostnames(tenant)),
    # django-axes: login attempts and logins of the institution's users.
    "axes.AccessAttempt": lambda tenant: Q(username__in=tenant.usernames),
    "axes.AccessLog": lambda tenant: Q(username__in=tenant.usernames),
    "axes.AccessFailureLog": lambda tenant: Q(username__in=tenant.usernames),
}


def tenant_hostnames(tenant: Tenant) -> list[str]:
    return [channel.hostname for channel in tenant.channels]


def _admin_rows(route: Route, tenant: Tenant):
    model = _admin_model(route)
    rows = TENANT_ROWS.get(model._meta.label)
    if rows is None:
        raise WalkNotTaught(
            f"{route.label} shows {model._meta.label}: teach the walk which of its rows belong "
            "to an institution (TENANT_ROWS in tests/certmgr/test_isolation.py), and make the "
            "fixture create one (tenant_populate)."
        )
    return model.objects.filter(rows(tenant)).distinct()


# Models whose every row the walk requests in the admin: they hold keys. An admin page shows
# any other model's rows alike, so a few of each make the point.
ADMIN_ROWS_ALL = {"certificates.Certificate", "certificates.CertificateRequest"}
ADMIN_ROWS_SAMPLE = 3


def _admin_objects(route: Route, tenant: Tenant) -> list[dict]:
    argument = route.arguments[0]
    rows = _admin_rows(route, tenant).order_by("pk").values_list("pk", flat=True)
    if _admin_model(route)._meta.label not in ADMIN_ROWS_ALL:
        rows = rows[:ADMIN_ROWS_SAMPLE]
    return [{argument: pk} for pk in rows]


def _view_on_site(route: Route, tenant: Tenant) -> list[dict]:
    objects = [*tenant.certificates, *tenant.requests, *tenant.channels]
    return [
        {
            "content_type_id": ContentType.objects.get_for_model(obj).pk,
            "object_id": obj.pk,
        }
        for obj in objects
    ]


ARGUMENT_KINDS = [
    ArgumentKind(
        "certificates/requests/<int:pk>/",
        frozenset({"pk"}),
        lambda route, tenant: [{"pk": request.pk} for request in tenant.requests],
    ),
    ArgumentKind(
        "certificates/<int:pk>/",
        frozenset({"pk"}),
        lambda route, tenant: [{"pk": certificate.pk} for certificate in tenant.certificates],
    ),
    ArgumentKind(
        "saleschannels/<int:pk>/",
        frozenset({"pk"}),
        lambda route, tenant: [{"pk": channel.pk} for channel in tenant.channels],
    ),
    ArgumentKind(
        "institutions/<slug:slug>/",
        frozenset({"slug"}),
        lambda route, tenant: [{"slug": tenant.institution.slug}],
    ),
    ArgumentKind(
        ".well-known/acme-challenge/<str:token>",
        frozenset({"token"}),
        lambda route, tenant: [{"token": challenge.token} for challenge in tenant.challenges],
    ),
    ArgumentKind(
        ".well-known/certmgr-challenge/",
        frozenset({"token"}),
        lambda route, tenant: [{"token": c.verification_token} for c in tenant.channels],
    ),
    ArgumentKind(
        "institutions/<slug:slug>/api-tokens/<int:pk>/",
        frozenset({"slug", "pk"}),
        lambda route, tenant: [
            {"slug": tenant.institution.slug, "pk": token.pk} for token in tenant.tokens
        ],
    ),
    # The API (tests/api/test_isolation.py walks it with tokens; here, with sessions).
    ArgumentKind(
        "api/v1/channels/<int:pk>/",
        frozenset({"pk"}),
        lambda route, tenant: [{"pk": channel.pk} for channel in tenant.channels],
    ),
    ArgumentKind(
        "api/v1/certificates/<int:pk>/",
        frozenset({"pk"}),
        lambda route, tenant: [{"pk": certificate.pk} for certificate in tenant.certificates],
    ),
    ArgumentKind(
        "api/v1/apple-pay/csrs/<int:pk>/",
        frozenset({"pk"}),
        lambda route, tenant: [{"pk": request.pk} for request in tenant.requests],
    ),
    ArgumentKind("admin/", frozenset({"object_id"}), _admin_objects),
    ArgumentKind("admin/auth/user/<id>/", frozenset({"id"}), _admin_objects),
    ArgumentKind("admin/r/", frozenset({"content_type_id", "object_id"}), _view_on_site),
    # The admin's app index and its catch-all: no object of anyone's in them.
    ArgumentKind(
        "admin/",
        frozenset({"app_label"}),
        lambda route, tenant: [{"app_label": "certificates"}],
        names_objects=False,
    ),
    ArgumentKind(
        "admin/",
        frozenset({"url"}),
        lambda route, tenant: [{"url": "certificates/no-such-page/"}],
        names_objects=False,
    ),
]


def argument_kind(route: Route) -> ArgumentKind | None:
    """How the walk fills the route's arguments (None: it takes none); WalkNotTaught when it
    does not know."""
    if not route.arguments:
        return None
    candidates = [
        kind
        for kind in ARGUMENT_KINDS
        if route.description.startswith(kind.prefix) and kind.arguments == set(route.arguments)
    ]
    if not candidates:
        raise WalkNotTaught(
            f"{route.label} takes {', '.join(route.arguments)}, which the isolation walk does "
            "not know how to fill: teach it in ARGUMENT_KINDS (tests/certmgr/test_isolation.py) "
            "which institution's objects the URL names, and have tenant_populate() create one "
            "of them, so that the page is proven not to serve them to other institutions."
        )
    return max(candidates, key=lambda kind: len(kind.prefix))


def argument_values(route: Route, tenant: Tenant) -> list[dict]:
    """Every set of values the walk requests the route with: [{}] for a route without
    arguments, else one per object of the tenant's that the URL can name."""
    kind = argument_kind(route)
    if kind is None:
        return [{}]
    values = kind.values(route, tenant)
    if not values:
        raise WalkNotTaught(
            f"{route.label}: the fixture made no object of {tenant.title}'s for it; make "
            "tenant_populate() create one, or the walk proves nothing for this page."
        )
    return values


@dataclass(frozen=True)
class Stop:
    """One route with the values of its arguments, as the walk requests it."""

    route: Route
    kind: ArgumentKind | None
    values: list[dict]
    # For a page without arguments, a query string naming the institution too (its filters).
    query: str = ""

    def urls(self) -> list[str]:
        urls = [self.route.url(values) for values in self.values]
        if self.kind is None and self.query:
            urls.append(f"{urls[0]}?{self.query}")
        return urls


def walk_plan(tenant: Tenant) -> list[Stop]:
    """Every route with the tenant's objects for its arguments, read once before walking
    (a walk adds rows, such as login records, that would otherwise grow it as it goes)."""
    query = urlencode({"institution": tenant.institution.slug})
    return [
        Stop(route, argument_kind(route), argument_values(route, tenant), query)
        for route in routes_all()
    ]


@dataclass(frozen=True)
class Exemption:
    """A pattern that answers an outsider otherwise than 403/404/405/login, by design."""

    why: str
    # What an outsider may get besides a denial (the body is still checked for leaks).
    statuses: frozenset[int] = frozenset()
    # It answers on a shop's own hostname too (the back office does not).
    on_shop_hosts: bool = False


EXEMPTIONS = {
    "login": Exemption(
        "The login page: a form for anyone, showing no one's data (POST re-displays it).",
        statuses=frozenset({200}),
    ),
    "logout": Exemption(
        "Ends the caller's own session and redirects to the login page (GET is 405). Listed so "
        "that no one wonders; it needs no exception."
    ),
    "admin:login": Exemption(
        "The admin's login page: public by design; every other admin page redirects non-staff "
        "users to it.",
        statuses=frozenset({200}),
    ),
    "admin:logout": Exemption(
        "Ends the caller's own session and says so (POST; GET is 405); a caller who is not "
        "staff is sent to the admin's index, which sends them on to its login page.",
        statuses=frozenset({200, 302}),
    ),
    "metrics": Exemption(
        "Platform-wide by design and protected by its bearer token (401 without it; the walk "
        "never sends it): test_metrics_answer_only_with_the_token.",
        statuses=frozenset({401}),
    ),
    "healthz": Exemption(
        "Public for the orchestrator, on any host: `ok` or `failing` and nothing more "
        "(test_healthz_tells_anyone_ok_or_failing_only).",
        statuses=frozenset({200, 503}),
        on_shop_hosts=True,
    ),
    "acme_challenge": Exemption(
        "Host-routed: a 404 on the back office like any unknown page; public by design on the "
        "challenge's own shop hostname (test_well_known_files_answer_on_their_own_hostname_only).",
        on_shop_hosts=True,
    ),
    "certmgr_challenge": Exemption(
        "Host-routed: a 404 on the back office; a channel's own verification token on its own "
        "hostname, public by design (test_well_known_files_answer_on_their_own_hostname_only).",
        on_shop_hosts=True,
    ),
    "apple_domain_association": Exemption(
        "Host-routed: a 404 on the back office; the shop's public Apple Pay file on its own "
        "hostname (test_well_known_files_answer_on_their_own_hostname_only).",
        on_shop_hosts=True,
    ),
}


# The automation API (README, "API") takes tokens only: a session, anonymous or logged in,
# gets 401 there, as it would for any object. Its own walk, with tokens of another
# institution and viewer tokens, is tests/api/test_isolation.py.
API_PREFIX = "api/v1/"


def token_only(route: Route) -> bool:
    return route.description.startswith(API_PREFIX) and route.name != "api:docs"


# --- the institutions -------------------------------------------------------------------


def _stored(response) -> None:
    assert response.status_code == 302, errors_of(response)


def tenant_populate(
    institution: Institution, *, title: str, manager, make_certificate, apple_ca, user_model
) -> Tenant:
    """One of every kind of object an institution can own, made through the real services
    and views, with names that say whose they are."""
    slug = institution.slug
    now = timezone.now()
    box_office_host, season_host = f"tickets.{slug}.test", f"season.{slug}.test"
    merchant = f"merchant.test.{slug}"
    client = Client()
    client.force_login(manager)

    ssl = make_certificate(
        institution, name=f"{title} box office certificate", hostnames=(box_office_host,)
    )
    expired = make_certificate(
        institution,
        name=f"{title} expired certificate",
        hostnames=(f"old.{slug}.test",),
        days_left=-3,
    )
    managed = make_certificate(
        institution,
        name=f"{title} season certificate",
        hostnames=(season_host,),
        source=Certificate.Source.MANAGED,
    )
    services.certificate_upload(
        institution=institution,
        name=f"{title} unreadable certificate",
        kind=Certificate.Kind.SSL,
        bundle=BundleResult(unreadable=True),
        actor=manager,
        expires_at=now + timedelta(days=200),
        content=f"{title} unreadable upload".encode(),
    )

    identity = apple_issue(apple_ca, key_type="rsa2048", merchant=merchant)
    _stored(
        client.post(
            reverse("certificate_upload_merchant_identity"),
            {
                "institution": institution.pk,
                "name": f"{title} merchant identity",
                "certificate": upload("merchant_id.cer", identity.der),
                "private_key": upload("merchant_id.key", identity.key_pem),
            },
        )
    )
    for number in (1, 2):  # the second replaces the first
        processing = apple_issue(apple_ca, key_type="ec256", merchant=merchant)
        _stored(
            client.post(
                reverse("certificate_upload_payment_processing"),
                {
                    "institution": institution.pk,
                    "name": f"{title} payment processing {number}",
                    "certificate": upload("apple_pay.cer", processing.der),
                    "private_key": upload("apple_pay.key", processing.key_pem),
                },
            )
        )
    proof_bytes = f"{title} domain association {token_source.token_hex(8)}".encode()
    _stored(
        client.post(
            reverse("certificate_upload_identity_proof"),
            {
                "institution": institution.pk,
                "name": f"{title} identity proof",
                "file": upload("apple-developer-merchantid-domain-association", proof_bytes),
                "expires_at": (date.today() + timedelta(days=365)).isoformat(),
            },
        )
    )
    proof = Certificate.objects.get(institution=institution, kind="apple_identity_proof")

    for kind, name in [
        ("apple_merchant_identity", f"{title} pending CSR"),
        ("apple_payment_processing", f"{title} completed CSR"),
    ]:
        _stored(
            client.post(
                reverse("certificate_request_new"),
                {
                    "institution": institution.pk,
                    "kind": kind,
                    "merchant_identifier": merchant,
                    "name": name,
                },
            )
        )
    completed = CertificateRequest.objects.get(name=f"{title} completed CSR")
    csr = client.get(reverse("certificate_request_csr", args=[completed.pk])).content
    _stored(
        client.post(
            reverse("certificate_request_complete", args=[completed.pk]),
            {"certificate": upload("apple_pay.cer", apple_sign_csr(apple_ca, csr))},
        )
    )

    box_office = channel_services.channel_create(
        institution=institution, name=f"{title} box office", hostname=box_office_host, actor=manager
    )
    channel_services.channel_set_ssl_mode(
        channel=box_office, mode=SalesChannel.SslMode.UPLOADED, certificate=ssl, actor=manager
    )
    channel_services.channel_hostname_verified_mark(channel=box_office, method="txt", actor=None)
    channel_services.channel_set_apple_pay(
        channel=box_office, enabled=True, identity_proof=proof, actor=manager
    )
    season = channel_services.channel_create(
        institution=institution, name=f"{title} season shop", hostname=season_host, actor=manager
    )
    # Managed, with a renewal failing and a probe seeing another certificate: the channel
    # shows on the dashboard, in the banner and in notifications.
    SalesChannel.objects.filter(pk=season.pk).update(
        ssl_mode=SalesChannel.SslMode.MANAGED,
        active_certificate=managed,
        renewal_failures=3,
        renewal_last_attempt_at=now,
        renewal_next_attempt_at=now + timedelta(hours=1),
        renewal_last_error=f"{title} renewal error",
        hostname_verified_at=now,
        hostname_verified_by="txt",
        status="renewal_failing",
        status_reason="acme_connection",
        status_params={"ca": "Pebble (test CA)"},
        checks=[
            {
                "check": "dns",
                "reason": "dns_elsewhere",
                "params": {
                    "hostname": season_host,
                    "found": ["203.0.113.9"],
                    "edge": ["198.51.100.1"],
                    "cname_hint": "",
                },
            },
        ],
        probe_status=ProbeStatus.MISMATCH,
        probe_checked_at=now,
        probe_fingerprint=expired.fingerprint_sha256,
    )
    AcmeOrder.objects.create(
        channel=season,
        hostname=season_host,
        directory_url="https://acme.test/directory",
        order_url=f"https://acme.test/order/{slug}-valid",
        status=AcmeOrder.Status.VALID,
        certificate=managed,
        finished_at=now,
    )
    AcmeOrder.objects.create(
        channel=season,
        hostname=season_host,
        directory_url="https://acme.test/directory",
        order_url=f"https://acme.test/order/{slug}-failed",
        status=AcmeOrder.Status.FAILED,
        error=f"{title} order error",
        finished_at=now,
    )
    token = f"{slug}-token-{token_source.token_hex(8)}"
    challenge = AcmeChallenge.objects.create(
        token=token,
        key_authorization=f"{token}.{title}Thumbprint",
        hostname=season_host,
        expires_at=now + timedelta(hours=1),
    )
    Notification.objects.create(
        institution=institution,
        kind=Notification.Kind.CERTIFICATE_EXPIRY,
        certificate=expired,
        threshold="0d",
        expires_at=expired.expires_at,
    )
    Notification.objects.create(
        institution=institution,
        kind=Notification.Kind.RENEWAL_FAILING,
        channel=season,
        threshold="renewal-failing",
        episode=now.isoformat(),
        details={"error": f"{title} renewal error"},
    )
    Institution.objects.filter(pk=institution.pk).update(
        notification_emails=f"alerts@{slug}.test",
        webhook_url=f"https://hooks.{slug}.test/certmgr",
    )
    token_page = reverse("api_tokens", args=[slug])
    token_name = f"{title} onboarding token"
    expires_on = (date.today() + timedelta(days=30)).isoformat()
    made = client.post(
        token_page, {"name": token_name, "role": "manager", "expires_on": expires_on}
    )
    token_secret = made.context["created"].secret
    viewer = user_model.objects.create_user(username=f"{slug}-viewer", password=PASSWORD)
    Membership.objects.create(user=viewer, institution=institution, role="viewer")
    group = Group.objects.create(name=f"{title} operators")
    manager.groups.add(group)
    # django-axes rows: a login, then a failed one (a success would reset the attempt).
    login_url = reverse("login")
    browser = Client()
    browser.post(login_url, {"username": manager.username, "password": PASSWORD})
    browser.post(login_url, {"username": manager.username, "password": "not the password"})

    certificates = list(Certificate.objects.filter(institution=institution).order_by("pk"))
    requests = list(CertificateRequest.objects.filter(institution=institution).order_by("pk"))
    channels = [box_office, season]
    markers = [
        institution.name,
        f"alerts@{slug}.test",
        f"hooks.{slug}.test",
        merchant,
        proof_bytes.decode(),
        token,
        f"{title}Thumbprint",
        f"{title} renewal error",
        f"{title} order error",
        token_name,
        token_secret,
        # Shown to the institution's managers only, on its Notifications page.
        institution.webhook_signing_secret,
        group.name,
        viewer.username,
        manager.username,
    ]
    for certificate in certificates:
        markers.append(certificate.name)
        markers.extend(certificate.domains)
        if certificate.fingerprint_sha256:
            markers.append(certificate.fingerprint_sha256)
            markers.append(certificate.serial_number)
    for request in requests:
        markers.append(request.name)
        markers.append(request.csr_pem.splitlines()[1])  # a line of the CSR's base64
    for channel in channels:
        markers.extend([channel.name, channel.hostname, channel.verification_token])
    return Tenant(
        institution=institution,
        manager=manager,
        title=title,
        certificates=certificates,
        requests=requests,
        channels=channels,
        challenges=[challenge],
        ssl=ssl,
        proof=proof,
        proof_bytes=proof_bytes,
        box_office=SalesChannel.objects.get(pk=box_office.pk),
        season=SalesChannel.objects.get(pk=season.pk),
        markers=sorted(set(markers)),
        tokens=list(ApiToken.objects.filter(institution=institution)),
        token_secrets=[token_secret],
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The cast and the fixture's logins hash passwords: PBKDF2's cost, a second each on a
    busy machine, protects nothing in a test database."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tenants(
    acme, opera, alice, bob, charlie, sam, make_certificate, apple_ca, django_user_model, settings
) -> dict[str, Tenant]:
    """Acme (Alice manages, Bob views) and the Opera House (Charlie manages), each with one of
    every kind of object; an ACME account; /metrics switched on with a token."""
    settings.CERTMGR_METRICS_TOKEN = METRICS_TOKEN
    settings.AXES_ENABLE_ACCESS_FAILURE_LOG = True  # rows for the admin's failure log pages
    # Sam is the platform's staff, as `seed_demo` makes it: every admin page opens to them.
    sam.is_superuser = True
    sam.save(update_fields=["is_superuser"])
    made = {
        key: tenant_populate(
            institution,
            title=title,
            manager=manager,
            make_certificate=make_certificate,
            apple_ca=apple_ca,
            user_model=django_user_model,
        )
        for key, institution, title, manager in [
            ("acme", acme, "Acme", alice),
            ("opera", opera, "Opera", charlie),
        ]
    }
    AcmeAccount.objects.create(
        directory_url="https://acme.test/directory",
        key_encrypted=encryption.encrypt(account_key_pem(account_key_generate())),
        uri="https://acme.test/account/1",
    )
    return made


def stored_secrets() -> Secrets:
    """Every private key stored (certificates, CSR requests, the ACME account) and its token."""
    found = Secrets()
    tokens = [
        *Certificate.objects.exclude(private_key_encrypted="").values_list(
            "private_key_encrypted", flat=True
        ),
        *CertificateRequest.objects.exclude(private_key_encrypted="").values_list(
            "private_key_encrypted", flat=True
        ),
        *AcmeAccount.objects.values_list("key_encrypted", flat=True),
    ]
    for number, token in enumerate(tokens):
        found.key(f"stored key {number}", encryption.decrypt(token))
        found.text(f"Fernet token of stored key {number}", token)
    return found


def post_body(tenant: Tenant) -> dict:
    """A POST naming the tenant's objects in every field a form of the project has."""
    return {
        "institution": tenant.institution.pk,
        "certificate": tenant.ssl.pk,
        "apple_identity_proof": tenant.proof.pk,
        "apple_pay_enabled": "on",
        "mode": SalesChannel.SslMode.UPLOADED,
        "kind": CertificateRequest.Kind.APPLE_PAYMENT_PROCESSING,
        "merchant_identifier": "merchant.test.walk",
        "name": "Walk",
        "hostname": "walk.example.test",
        "notification_emails": "walk@example.test",
        "webhook_url": "https://walk.example.test/hook",
    }


# --- requests and what is wrong with their answers ---------------------------------------


class Visitor:
    """A test client as one user (None: anonymous), logged in once, and again only when a
    walked page (a logout) ended the session. Server errors come back as 500 responses."""

    def __init__(self, user, **options):
        self.user = user
        self.client = Client(raise_request_exception=False, **options)
        self._login()

    def _login(self) -> None:
        self.client.cookies.clear()
        if self.user is not None:
            self.client.force_login(self.user)

    def _logged_out(self) -> bool:
        """A walked page ended the session: a logout, or a request whose rolled-back writes
        took the session row with them."""
        cookie = self.client.cookies.get(settings.SESSION_COOKIE_NAME)
        if cookie is None or not cookie.value:
            return True
        return self.client.session.get(SESSION_KEY) != str(self.user.pk)

    def send(
        self, method: str, url: str, data=None, *, rolled_back=False, before_rollback=None, **extra
    ):
        """GET (`data` as the query string) or POST. `rolled_back` undoes the request's
        writes (so that a walk may post to delete pages), after calling `before_rollback` to
        look at them."""
        if self.user is None:
            self.client.cookies.clear()  # each anonymous request on its own
        with transaction.atomic():
            if method == "get":
                response = self.client.get(url, data, **extra)
            else:
                response = self.client.post(url, data or {}, **extra)
            if before_rollback is not None:
                before_rollback(response)
            transaction.set_rollback(rolled_back)
        if self.user is not None and self._logged_out():
            self._login()
        return response


def body_of(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def is_login_redirect(response) -> bool:
    """A redirect to the back office's login page, or to the admin's: the admin is walked
    like every other page, and sends anyone who is not staff to its own login."""
    if response.status_code not in REDIRECTS:
        return False
    return urlsplit(response["Location"]).path in {
        resolve_url(settings.LOGIN_URL),
        reverse("admin:login"),
    }


def leaks(response, *, secrets: Secrets, markers=()) -> list[str]:
    """What a response must not carry and does: key material, another institution's text."""
    body = body_of(response)
    found = [f"key material: {name}" for name in secrets.found_in(body)]
    text = hostnames_unwrapped(body.decode("utf-8", "replace"))
    text += response.get("Content-Disposition", "")
    found += [f"another institution's {marker!r}" for marker in markers if marker in text]
    return found


class Findings:
    """Problems found by a walk, reported together at the end with the request that made
    each."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.requests = 0

    def check(self, label: str, response, *, secrets: Secrets, markers=(), denied=False):
        self.requests += 1
        where = f"{label} -> {response.status_code}"
        if response.status_code >= 500:
            self.problems.append(f"{where}: server error")
        for leak in leaks(response, secrets=secrets, markers=markers):
            self.problems.append(f"{where}: {leak}")
        if denied and not (response.status_code in DENIALS or is_login_redirect(response)):
            self.problems.append(f"{where}: expected 403, 404, 405 or a redirect to login")

    def assert_none(self) -> None:
        assert not self.problems, f"{len(self.problems)} problems:\n" + "\n".join(self.problems)


# The apps whose models hold the project's data.
PROJECT_APPS = (
    "api",
    "core",
    "institutions",
    "certificates",
    "saleschannels",
    "acme_client",
    "monitoring",
)


def database_rows() -> dict:
    """Every row of the project's models and of the users (login times aside)."""
    rows = {}
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            rows[model._meta.label] = list(model.objects.order_by("pk").values())
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    rows[user_model._meta.label] = [
        {name: value for name, value in row.items() if name != "last_login"}
        for row in user_model.objects.order_by("pk").values()
    ]
    return rows


def _tenant_models():
    """The project's models that belong to an institution (an `institution` foreign key)."""
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            if any(item.name == "institution" for item in model._meta.get_fields()):
                yield model


def tenant_rows(tenant: Tenant) -> dict:
    """Every row of the tenant's: what a request from outside must never change."""
    rows = {
        model._meta.label: list(
            model.objects.filter(institution=tenant.institution).order_by("pk").values()
        )
        for model in _tenant_models()
    }
    rows["institution"] = list(Institution.objects.filter(pk=tenant.institution.pk).values())
    rows["orders"] = list(
        AcmeOrder.objects.filter(channel__institution=tenant.institution).order_by("pk").values()
    )
    return rows


def cross_tenant_links() -> list[str]:
    """Rows of one institution that point at an object of another (a channel serving another
    institution's certificate, a certificate replacing another's...)."""
    found = []
    for model in _tenant_models():
        for link in model._meta.get_fields():
            related = link.related_model
            if not (link.many_to_one and link.concrete and link.name != "institution"):
                continue
            if not any(item.name == "institution" for item in related._meta.get_fields()):
                continue
            crossing = model.objects.filter(**{f"{link.name}__isnull": False}).exclude(
                **{f"{link.name}__institution": F("institution")}
            )
            found += [
                f"{model._meta.label} {pk}.{link.name}"
                for pk in crossing.values_list("pk", flat=True)
            ]
    return found


def edge_files() -> dict[str, bytes]:
    edge = settings.CERTMGR_EDGE_DIR
    return (
        {item.name: item.read_bytes() for item in sorted(edge.iterdir())} if edge.exists() else {}
    )


# --- the walk -----------------------------------------------------------------------------


def walk_as_outsider(visitor: Visitor, who: str, tenant: Tenant, plan: list[Stop]) -> Findings:
    """Request every stop of the plan with GET and POST as someone outside `tenant`."""
    secrets = stored_secrets()
    findings = Findings()
    body = post_body(tenant)
    for stop in plan:
        exemption = EXEMPTIONS.get(stop.route.name)
        # A page without arguments is the caller's own (their dashboard, a form): it may
        # answer a member, but never anonymous, and shows nothing of the tenant's.
        must_deny = stop.kind is not None or visitor.user is None
        for url in stop.urls():
            for method in ("get", "post"):
                response = visitor.send(method, url, body)
                allowed = exemption is not None and response.status_code in exemption.statuses
                allowed = allowed or (token_only(stop.route) and response.status_code == 401)
                findings.check(
                    f"{who} {method.upper()} {url} ({stop.route.label})",
                    response,
                    secrets=secrets,
                    markers=tenant.markers,
                    denied=must_deny and not allowed,
                )
        if stop.kind is not None and stop.kind.names_objects:
            # The tenant's object must be answered exactly like one that does not exist.
            missing = stop.route.url(dict.fromkeys(stop.route.arguments, MISSING))
            url = stop.urls()[0]
            for method in ("get", "post"):
                expected = visitor.send(method, missing, body).status_code
                answered = visitor.send(method, url, body).status_code
                if answered != expected:
                    findings.problems.append(
                        f"{who} {method.upper()} {url} ({stop.route.label}) -> {answered}, but "
                        f"{expected} for a missing object: the answer tells that it exists"
                    )
    return findings


@pytest.mark.parametrize("who", ["anonymous", "bob", "alice"])
def test_no_page_gives_anything_of_another_institution(who, tenants, request):
    """Every route, with each of the Opera's objects in its URL and in a POST body, as
    someone outside the Opera: denied, exactly as for a missing object, nothing shown, nothing
    changed."""
    opera = tenants["opera"]
    plan = walk_plan(opera)
    visitor = Visitor(None if who == "anonymous" else request.getfixturevalue(who))
    rows_before, edge_before = database_rows(), edge_files()

    findings = walk_as_outsider(visitor, who, opera, plan)

    findings.assert_none()
    assert database_rows() == rows_before, "a request by someone outside the Opera changed data"
    assert edge_files() == edge_before, "a request by someone outside the Opera changed the edge"
    assert findings.requests > 400  # the walk really walked


@pytest.mark.parametrize("who", ["bob", "alice"])
def test_a_post_naming_another_institutions_objects_on_ones_own_pages_is_refused(
    who, tenants, request
):
    """Every route with Acme's own objects in its URL, posted a body that names the Opera's
    (its institution, its certificate, its identity proof): whatever Acme's pages do with
    it, no row of Acme's comes to point at the Opera's, nothing of the Opera's changes or
    shows. Each request is rolled back after the check, so that every page sees the same
    objects."""
    acme, opera = tenants["acme"], tenants["opera"]
    visitor = Visitor(request.getfixturevalue(who))
    secrets = stored_secrets()
    opera_before = tenant_rows(opera)
    body = post_body(opera)
    findings = Findings()

    def look(label):
        def at_writes(response):
            findings.check(label, response, secrets=secrets, markers=opera.markers)
            findings.problems += [
                f"{label}: {link} now names the Opera's" for link in cross_tenant_links()
            ]
            if tenant_rows(opera) != opera_before:
                findings.problems.append(f"{label}: the Opera's rows changed")

        return at_writes

    for stop in walk_plan(acme):
        for url in stop.urls():
            label = f"{who} POST {url} ({stop.route.label})"
            visitor.send("post", url, body, rolled_back=True, before_rollback=look(label))
    findings.assert_none()
    assert findings.requests > 100


def _certificate_unscoped(request, pk):
    return Certificate.objects.with_status(timezone.now()).get(pk=pk)


def _channel_unscoped(user, pk):
    return SalesChannel.objects.select_related("institution", "certificate").get(pk=pk)


def test_the_walk_catches_a_view_that_forgets_the_institution(tenants, alice, monkeypatch):
    """The negative control: with the certificate and channel pages loading objects without
    the user's scope, the walk fails, naming what leaked and what was allowed."""
    monkeypatch.setattr("certificates.views._get_certificate_for_user", _certificate_unscoped)
    monkeypatch.setattr("saleschannels.views.channel_for_user", _channel_unscoped)
    monkeypatch.setattr("acme_client.views.channel_for_user", _channel_unscoped)
    opera = tenants["opera"]
    names = {"certificate_detail", "certificate_download", "channel_detail", "channel_ssl"}
    plan = [stop for stop in walk_plan(opera) if stop.route.name in names]

    problems = "\n".join(walk_as_outsider(Visitor(alice), "alice", opera, plan).problems)

    assert f"another institution's {opera.ssl.name!r}" in problems
    assert f"another institution's {opera.box_office.hostname!r}" in problems
    assert "-> 200: expected 403, 404, 405 or a redirect to login" in problems
    assert "for a missing object: the answer tells that it exists" in problems


def admin_withholds(route: Route, user) -> bool:
    """An admin delete page whose ModelAdmin lets no one delete: rows the back office deletes
    after saying what that stops, and the audit trail. Staff get 403 there by design
    (tests/certmgr/test_admin.py)."""
    if not (route.name.startswith("admin:") and route.name.endswith("_delete")):
        return False
    request = RequestFactory().get("/")
    request.user = user
    return not django_admin.site._registry[_admin_model(route)].has_delete_permission(request)


def test_the_owner_reaches_every_object_the_walk_uses(tenants, charlie, sam):
    """The positive control: the URLs the walk builds really name the Opera's objects, since
    Charlie (Sam in the admin) gets them: 200, or a redirect elsewhere than to login. A page
    that takes POST only is posted to, with its writes rolled back. And the text the walk
    looks for is really shown to them somewhere, so its absence elsewhere means something."""
    opera = tenants["opera"]
    visitors = {"charlie": Visitor(charlie), "sam": Visitor(sam)}
    secrets = stored_secrets()
    findings = Findings()
    reached = 0
    shown = []
    for stop in walk_plan(opera):
        exemption = EXEMPTIONS.get(stop.route.name)
        if exemption is not None and exemption.on_shop_hosts:
            continue  # test_well_known_files_answer_on_their_own_hostname_only
        if token_only(stop.route):
            continue  # no session reaches the API: tests/api/test_isolation.py
        who = "sam" if stop.route.description.startswith("admin/") else "charlie"
        names_objects = stop.kind is not None and stop.kind.names_objects
        for url in stop.urls():
            response = visitors[who].send("get", url)
            method = "GET"
            if response.status_code == 405 and names_objects:
                response = visitors[who].send("post", url, post_body(opera), rolled_back=True)
                method = "POST"
            label = f"{who} {method} {url} ({stop.route.label})"
            findings.check(label, response, secrets=secrets)
            shown.append(hostnames_unwrapped(body_of(response).decode("utf-8", "replace")))
            if not names_objects:
                continue
            if response.status_code == 403 and admin_withholds(stop.route, visitors[who].user):
                continue
            if response.status_code == 200 or (
                response.status_code in REDIRECTS and not is_login_redirect(response)
            ):
                reached += 1
            else:
                findings.problems.append(f"{label}: the owner does not reach it")
    findings.assert_none()
    assert reached > 50
    text = "\n".join(shown)
    never_shown = [marker for marker in opera.markers if marker not in text]
    # The challenge's token and key authorization are served on the shop's hostname only;
    # an API token's secret was shown once, when it was created.
    (challenge,) = opera.challenges
    assert never_shown == sorted(
        [challenge.token, challenge.key_authorization.split(".")[1], *opera.token_secrets]
    )


@pytest.mark.parametrize(
    ("who", "whose"),
    [("charlie", "opera"), ("alice", "acme"), ("sam", "opera"), ("sam", "acme")],
)
def test_no_response_to_the_owner_carries_a_private_key(who, whose, tenants, request):
    """Every route as the owner of the objects in its URL (and as staff, admin pages
    included): GET, then POST naming the owner's objects in every field (rolled back)."""
    tenant = tenants[whose]
    plan = walk_plan(tenant)
    visitor = Visitor(request.getfixturevalue(who))
    secrets = stored_secrets()
    findings = Findings()
    successes = 0
    for method in ("get", "post"):
        for stop in plan:
            for url in stop.urls():
                response = visitor.send(method, url, post_body(tenant), rolled_back=True)
                findings.check(
                    f"{who} {method.upper()} {url} ({stop.route.label})", response, secrets=secrets
                )
                successes += response.status_code == 200
    findings.assert_none()
    assert successes > 30


def test_a_shop_hostname_reaches_nothing_but_its_well_known_files(tenants, charlie):
    """On a shop's own hostname the back office does not exist, even for its manager: every
    page but the host-routed ones answers 404."""
    opera = tenants["opera"]
    visitor = Visitor(charlie)
    secrets = stored_secrets()
    findings = Findings()
    host = opera.box_office.hostname
    for stop in walk_plan(opera):
        exemption = EXEMPTIONS.get(stop.route.name)
        if exemption is not None and exemption.on_shop_hosts:
            continue
        for url in stop.urls():
            for method in ("get", "post"):
                response = visitor.send(method, url, post_body(opera), HTTP_HOST=host)
                label = f"charlie {method.upper()} {host}{url}"
                findings.check(label, response, secrets=secrets)
                if response.status_code != 404:
                    findings.problems.append(f"{label} -> {response.status_code}, not 404")
    findings.assert_none()


# --- the exempted pages, each on its own ---------------------------------------------------


def test_well_known_files_answer_on_their_own_hostname_only(tenants, client):
    opera, acme = tenants["opera"], tenants["acme"]
    secrets = stored_secrets()
    (challenge,) = opera.challenges
    challenge_url = reverse("acme_challenge", args=[challenge.token])
    apple_url = reverse("apple_domain_association")

    answer = client.get(challenge_url, HTTP_HOST=challenge.hostname)
    assert answer.status_code == 200
    assert answer.content.decode() == challenge.key_authorization  # public by design
    assert not secrets.found_in(answer.content)
    for host in (acme.season.hostname, opera.box_office.hostname, "testserver"):
        assert client.get(challenge_url, HTTP_HOST=host).status_code == 404, host

    token_url = reverse("certmgr_challenge", args=[opera.box_office.verification_token])
    answer = client.get(token_url, HTTP_HOST=opera.box_office.hostname)
    assert answer.status_code == 200
    assert answer.content.decode() == opera.box_office.verification_token
    for host in (opera.season.hostname, acme.box_office.hostname, "testserver"):
        assert client.get(token_url, HTTP_HOST=host).status_code == 404, host

    served = client.get(apple_url, HTTP_HOST=opera.box_office.hostname)
    assert served.status_code == 200 and served.content == opera.proof_bytes
    theirs = client.get(apple_url, HTTP_HOST=acme.box_office.hostname)
    assert theirs.status_code == 200 and theirs.content == acme.proof_bytes
    for host in (opera.season.hostname, "testserver"):  # Apple Pay is off on the season shop
        assert client.get(apple_url, HTTP_HOST=host).status_code == 404, host


def test_metrics_answer_only_with_the_token(tenants, client, bob, settings):
    opera = tenants["opera"]
    secrets = stored_secrets()
    url = reverse("metrics")
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer not-the-token"}):
        for user in (None, bob):
            response = Visitor(user).send("get", url, **headers)
            assert response.status_code == 401
            assert not leaks(response, secrets=secrets, markers=opera.markers)

    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    assert opera.ssl.name in response.content.decode()  # the whole platform, by design
    assert not secrets.found_in(response.content)

    settings.CERTMGR_METRICS_TOKEN = ""
    assert client.get(url, HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_healthz_tells_anyone_ok_or_failing_only(tenants, bob, monkeypatch):
    for user in (None, bob):
        response = Visitor(user).send("get", reverse("healthz"))
        assert (response.status_code, response.content) == (200, b"ok")
        assert response["Content-Type"].startswith("text/plain")
    # A failure's reason (here one naming a broker URL with its password) stays in the log.
    monkeypatch.setattr(
        "certmgr.health.broker_problem",
        lambda: "broker: OperationalError: redis://:hunter2@10.0.0.5:6379/0 refused",
    )
    for user in (None, bob):
        response = Visitor(user).send("get", reverse("healthz"))
        assert (response.status_code, response.content) == (503, b"failing")


# --- counts, error pages and re-displayed forms --------------------------------------------


def test_counts_never_include_another_institution(tenants, as_alice):
    """Numbers leak too: the dashboard, the banner and the lists count Acme's objects only."""
    acme = tenants["acme"]
    acme_certificates = Certificate.objects.filter(institution=acme.institution)
    dashboard = as_alice.get(reverse("home"))
    assert dashboard.context["total"] == acme_certificates.count()
    alerts = dashboard.context["certificate_alerts"]
    assert (alerts.expired, alerts.channels_failing) == (1, 1)
    listed = as_alice.get(reverse("certificate_list"))
    assert listed.context["page"].paginator.count == acme_certificates.count()
    assert len(listed.context["pending_requests"]) == 1
    channels = as_alice.get(reverse("channel_list"))
    assert channels.context["page"].paginator.count == len(acme.channels)
    institutions = as_alice.get(reverse("institution_list"))
    assert [row["institution"] for row in institutions.context["rows"]] == [acme.institution]


def test_searching_for_another_institutions_names_finds_nothing(tenants, as_alice):
    opera = tenants["opera"]
    for term in (opera.box_office.hostname, opera.ssl.name, opera.institution.name):
        listed = as_alice.get(reverse("certificate_list"), {"q": term})
        assert listed.context["page"].paginator.count == 0, term
        assert listed.context["pending_requests"] == [], term
        channels = as_alice.get(reverse("channel_list"), {"q": term})
        assert channels.context["page"].paginator.count == 0, term


def test_a_channel_cannot_take_another_institutions_hostname(tenants, as_alice):
    """The edge names its files after hostnames: a channel of Acme's on the Opera's hostname,
    however spelt, would serve Acme's certificate there."""
    acme, opera = tenants["acme"], tenants["opera"]
    edge_before = edge_files()
    theirs = opera.box_office.hostname
    spellings = [
        theirs.upper(),
        f"{theirs}.",
        f"  {theirs}  ",
        theirs.replace(".", "\uff0e"),  # fullwidth full stop, a dot to IDNA
        theirs.replace(".", "\u3002"),  # ideographic full stop, likewise
    ]
    for hostname in spellings:
        created = as_alice.post(
            reverse("channel_new"),
            {"institution": acme.institution.pk, "name": "Takeover", "hostname": hostname},
        )
        edited = as_alice.post(
            reverse("channel_edit", args=[acme.season.pk]),
            {"name": "Takeover", "hostname": hostname},
        )
        for response in (created, edited):
            assert response.status_code == 200, hostname
            assert errors_of(response) == {
                "hostname": ["This hostname is already used by a sales channel."]
            }, hostname
    assert SalesChannel.objects.filter(hostname=theirs).get() == opera.box_office
    assert edge_files() == edge_before


def _secret_columns(model) -> list[str]:
    """Columns holding keys or whatever a user uploaded: encrypted keys, raw file bytes."""
    return [
        column.name
        for column in model._meta.concrete_fields
        if column.name.endswith("_encrypted") or isinstance(column, BinaryField)
    ]


def test_the_admin_neither_shows_nor_filters_on_secret_columns(tenants, sam):
    """Not on the change form, and not as a changelist filter: the result count of
    ?private_key_encrypted__startswith=... would spell the column out to staff."""
    visitor = Visitor(sam)
    guarded = []
    for model, model_admin in django_admin.site._registry.items():
        columns = _secret_columns(model)
        if not columns:
            continue
        guarded.append(model._meta.label)
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        some = model.objects.order_by("pk").first()
        change = visitor.send("get", reverse(f"{prefix}_change", args=[some.pk]))
        assert change.status_code == 200
        for column in columns:
            assert column not in change.context["adminform"].form.fields, column
            # Any lookup on the column is refused (SuspiciousOperation: 400), whatever it is.
            filtered = visitor.send(
                "get", reverse(f"{prefix}_changelist"), {f"{column}__isnull": "False"}
            )
            assert filtered.status_code == 400, (model._meta.label, column)
    assert sorted(guarded) == [
        "certificates.Certificate",
        "certificates.CertificateRequest",
        "institutions.Institution",
    ]


def _fails(request):
    """A view that fails with a stored key in its exception, for the 500 page."""
    certificate = Certificate.objects.exclude(private_key_encrypted="").first()
    raise RuntimeError(certificate.private_key_pem())


urlpatterns = [path("walk-fails/", _fails), path("", include("certmgr.urls"))]


def test_error_pages_carry_no_key(tenants, alice, bob, settings):
    opera, acme = tenants["opera"], tenants["acme"]
    secrets = stored_secrets()
    as_alice, as_bob = Visitor(alice), Visitor(bob)
    channel_ssl = reverse("channel_ssl", args=[acme.box_office.pk])
    too_many_fields = {
        f"field{number}": "x" for number in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)
    }
    answers = {
        "404": as_alice.send("get", "/no-such-page/"),
        "404 of another's object": as_alice.send(
            "get", reverse("certificate_detail", args=[opera.ssl.pk])
        ),
        "403": as_bob.send("post", channel_ssl, {"mode": "none"}),
        "400": as_alice.send("post", channel_ssl, too_many_fields),
        "400 unknown host": Visitor(None).send("get", "/", HTTP_HOST="unknown.example.test"),
        "403 CSRF": Visitor(alice, enforce_csrf_checks=True).send("post", reverse("channel_new")),
    }
    settings.ROOT_URLCONF = __name__
    answers["500"] = as_alice.send("get", "/walk-fails/")

    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "404": 404,
        "404 of another's object": 404,
        "403": 403,
        "400": 400,
        "400 unknown host": 400,
        "403 CSRF": 403,
        "500": 500,
    }
    for name, response in answers.items():
        assert not leaks(response, secrets=secrets, markers=opera.markers), name


def _key_of(issued: demo_pki.Issued) -> Secrets:
    found = Secrets()
    found.key("the uploaded key", issued.key_pem)
    return found


def test_a_form_shown_again_after_an_upload_with_a_key_does_not_carry_the_key(
    as_alice, acme, pki, apple_ca
):
    """Every way an upload with a key can be refused re-displays the form without the key."""
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.example.test"])
    stranger = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["other.example.test"])
    merchant_ec = apple_issue(apple_ca, key_type="ec256")
    ssl_url = reverse("certificate_upload_ssl")
    base = {"institution": acme.pk, "name": "Refused"}
    attempts = {
        "key of another certificate": (
            ssl_url,
            {
                "certificate": upload("shop.crt", leaf.certificate_pem),
                "private_key": upload("shop.key", stranger.key_pem),
            },
            stranger,
        ),
        "combined PEM with a broken chain": (
            ssl_url,
            {
                "certificate": upload(
                    "combined.pem",
                    demo_pki.pem_join(leaf.key_pem, leaf.certificate_pem, stranger.certificate_pem),
                )
            },
            leaf,
        ),
        "encrypted key, wrong passphrase": (
            ssl_url,
            {
                "certificate": upload("shop.crt", leaf.certificate_pem),
                "private_key": upload(
                    "shop.key", demo_pki.key_pem(leaf.private_key, passphrase=b"right")
                ),
                "passphrase": "wrong",
            },
            leaf,
        ),
        "unreadable certificate with a key: the date is asked for": (
            ssl_url,
            {
                "certificate": upload("shop.crt", b"not a certificate at all"),
                "private_key": upload("shop.key", leaf.key_pem),
            },
            leaf,
        ),
        "PKCS#12, wrong password": (
            ssl_url,
            {
                "certificate": upload(
                    "shop.p12",
                    demo_pki.pkcs12_bundle(
                        leaf=leaf, chain=[pki["intermediate"]], password=b"right"
                    ),
                ),
                "passphrase": "wrong",
            },
            leaf,
        ),
        "merchant identity with an EC key": (
            reverse("certificate_upload_merchant_identity"),
            {
                "certificate": upload("merchant_id.cer", merchant_ec.der),
                "private_key": upload("merchant_id.key", merchant_ec.key_pem),
            },
            merchant_ec,
        ),
        "identity proof that is a key": (
            reverse("certificate_upload_identity_proof"),
            {
                "file": upload("apple-developer-merchantid-domain-association", leaf.key_pem),
                "expires_at": (date.today() + timedelta(days=30)).isoformat(),
            },
            leaf,
        ),
    }
    for name, (url, files, issued) in attempts.items():
        as_alice.get(url)  # a page opened anew keeps no file of the attempt before
        response = as_alice.post(url, {**base, **files})
        assert response.status_code == 200, name
        # Refused, or (a certificate that cannot be read) asked for its expiry date.
        assert errors_of(response) or response.context["form"].__dict__.get("expiry_prompt"), name
        assert not leaks(response, secrets=_key_of(issued)), name
    assert not Certificate.objects.exists()


def test_a_refused_cer_for_a_csr_does_not_show_the_request_key(as_alice, acme, apple_ca):
    as_alice.post(
        reverse("certificate_request_new"),
        {
            "institution": acme.pk,
            "kind": "apple_payment_processing",
            "merchant_identifier": "merchant.test.acme",
            "name": "Waiting",
        },
    )
    certificate_request = CertificateRequest.objects.get()
    secrets = Secrets()
    secrets.key("the request's key", certificate_request.private_key_pem())
    secrets.text("its token", certificate_request.private_key_encrypted)
    another = apple_issue(apple_ca, key_type="ec256", merchant="merchant.test.acme")

    response = as_alice.post(
        reverse("certificate_request_complete", args=[certificate_request.pk]),
        {"certificate": upload("apple_pay.cer", another.der)},
    )

    assert response.status_code == 200 and errors_of(response)
    assert not leaks(response, secrets=secrets)


# --- the walk itself -----------------------------------------------------------------------


def _view(request):  # pragma: no cover - never called
    raise AssertionError


def test_a_page_with_an_unknown_kind_of_argument_fails_the_walk():
    """A page added with an argument the walk cannot fill must not be skipped in silence."""
    resolver = URLResolver(
        RegexPattern(r"^/"), [path("widgets/<int:widget_id>/", _view, name="widget_detail")]
    )
    (route,) = routes_all(resolver)
    assert route.arguments == ("widget_id",)
    with pytest.raises(WalkNotTaught, match="teach it in ARGUMENT_KINDS"):
        argument_values(route, tenant=None)


def test_the_tables_name_only_pages_that_exist():
    """Stale entries would hide that a page changed: every exemption names a route, every
    argument kind fills one, and every route's arguments are known."""
    routes = routes_all()
    names = {route.name for route in routes}
    assert set(EXEMPTIONS) <= names, set(EXEMPTIONS) - names
    used = {argument_kind(route) for route in routes} - {None}
    assert used == set(ARGUMENT_KINDS), set(ARGUMENT_KINDS) - used
