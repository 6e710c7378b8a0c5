"""Reads of the certificate domain that are more than a one-line query.

Every read starts from Certificate.objects.visible_to(user), so a user never sees another
institution's certificates, and costs a fixed number of queries whatever the table's size.
"""

from dataclasses import dataclass
from datetime import date, datetime, time

from cryptography import x509
from django.db.models import Prefetch, Q
from django.utils import timezone

from .bundle import certificate_facts
from .models import Certificate, CertificateRequest, CertificateStatus, status_q

# Pending CSRs are few (each waits for a person to visit Apple's portal); the list shows at
# most this many.
PENDING_REQUESTS_SHOWN = 50

CERTIFICATE_SORTS = {
    "expires_at": ("expires_at", "pk"),
    "-expires_at": ("-expires_at", "-pk"),
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "institution": ("institution__name", "expires_at", "pk"),
}


@dataclass(frozen=True)
class CertificateFilters:
    status: str = ""
    kind: str = ""
    institution: str = ""  # slug
    q: str = ""
    sort: str = "expires_at"
    # Days in the current time zone: expiring on or after `expires_after`, before
    # `expires_before` (the dashboard's timeline links to one week this way).
    expires_after: date | None = None
    expires_before: date | None = None


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the current time zone, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min))


def certificate_list(*, user, filters: CertificateFilters, now: datetime):
    """Visible certificates matching `filters`, annotated with status, sorted, ready to page."""
    channels = _channel_model().objects.only("pk", "name", "hostname", "certificate_id")
    queryset = (
        Certificate.objects.visible_to(user)
        .with_status(now)
        .defer("content", "private_key_encrypted", "certificate_pem", "chain_pem", "subject")
        # Prefetched rather than joined: a join makes the database sort every visible row
        # before it can take the first page, instead of reading the expiry index in order.
        .prefetch_related(
            "institution",
            Prefetch("chosen_by_channels", queryset=channels),
            Prefetch(
                "active_on_channels",
                queryset=_channel_model().objects.only(
                    "pk", "name", "hostname", "active_certificate_id"
                ),
            ),
        )
    )
    if filters.status in CertificateStatus.values:
        queryset = queryset.filter(status_q(filters.status, now))
    if filters.kind in Certificate.Kind.values:
        queryset = queryset.filter(kind=filters.kind)
    if filters.institution:
        queryset = queryset.filter(institution__slug=filters.institution)
    if filters.q:
        queryset = queryset.filter(
            Q(name__icontains=filters.q)
            | Q(domains__icontains=filters.q)
            | Q(merchant_identifier__icontains=filters.q)
        )
    if filters.expires_after:
        queryset = queryset.filter(expires_at__gte=day_start(filters.expires_after))
    if filters.expires_before:
        queryset = queryset.filter(expires_at__lt=day_start(filters.expires_before))
    return queryset.order_by(*CERTIFICATE_SORTS.get(filters.sort, CERTIFICATE_SORTS["expires_at"]))


def certificate_requests_pending(*, user, filters: CertificateFilters) -> list[CertificateRequest]:
    """Visible CSRs still waiting for Apple's certificate, newest first, in one query.

    They have no expiry yet, so filters on status or expiry dates leave them out; the type,
    institution and search filters apply.
    """
    if filters.status or filters.expires_after or filters.expires_before:
        return []
    if filters.kind and filters.kind not in CertificateRequest.Kind.values:
        return []
    queryset = (
        CertificateRequest.objects.visible_to(user)
        .pending()
        .select_related("institution")
        .defer("private_key_encrypted", "csr_pem")
    )
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.institution:
        queryset = queryset.filter(institution__slug=filters.institution)
    if filters.q:
        queryset = queryset.filter(
            Q(name__icontains=filters.q) | Q(merchant_identifier__icontains=filters.q)
        )
    return list(queryset[:PENDING_REQUESTS_SHOWN])


def _channel_model():
    """The sales channel model, reached through the reverse relation of its foreign keys to
    Certificate: this app sits below saleschannels and imports nothing from it."""
    return Certificate._meta.get_field("active_on_channels").related_model


def certificate_channels_using(certificate: Certificate) -> list:
    """The sales channels using the certificate, each once, by hostname (one query): those
    that chose it (uploaded mode), serve it (deployed), or name it as their Apple Pay
    identity proof. A certificate they use cannot be deleted."""
    channels = (
        certificate.chosen_by_channels.all()
        | certificate.active_on_channels.all()
        | certificate.proof_for_channels.all()
    )
    return list(channels.distinct().order_by("hostname"))


def certificate_channels(certificate: Certificate) -> list:
    """Sales channels using the certificate (chosen or deployed), each once, from the list
    page's prefetch (certificate_list): no query of its own."""
    seen = {}
    for channel in [*certificate.chosen_by_channels.all(), *certificate.active_on_channels.all()]:
        seen.setdefault(channel.pk, channel)
    return list(seen.values())


def certificate_stored_before(certificate: Certificate) -> Certificate | None:
    """The institution's oldest other certificate with the same SHA-256 fingerprint (the same
    certificate uploaded before), or None; a file that could not be read has no fingerprint
    and no twin."""
    if not certificate.fingerprint_sha256:
        return None
    return (
        Certificate.objects.filter(
            institution_id=certificate.institution_id,
            fingerprint_sha256=certificate.fingerprint_sha256,
        )
        .exclude(pk=certificate.pk)
        .only("pk", "name", "created_at")
        .order_by("created_at", "pk")
        .first()
    )


def identity_proofs_valid(institution_id: int, now: datetime):
    """The institution's Apple Pay identity proofs that have not expired, latest first: the
    first is the one its channels serve unless they name another."""
    return Certificate.objects.filter(
        institution_id=institution_id,
        kind=Certificate.Kind.APPLE_IDENTITY_PROOF,
        expires_at__gt=now,
    ).order_by("-created_at", "-pk")


def identity_proof_served_on(proof: Certificate, now: datetime) -> list:
    """The channels whose hostname serves this identity proof now (two queries): those with
    Apple Pay on that name it, or name none while it is the institution's latest valid one."""
    if proof.expires_at <= now:
        return []
    latest = identity_proofs_valid(proof.institution_id, now).values_list("pk", flat=True).first()
    channels = proof.institution.sales_channels.filter(apple_pay_enabled=True).only(
        "pk", "name", "hostname", "apple_identity_proof_id"
    )
    return [
        channel
        for channel in channels
        if channel.apple_identity_proof_id == proof.pk
        or (channel.apple_identity_proof_id is None and latest == proof.pk)
    ]


def certificate_chain_facts(certificate: Certificate) -> list:
    """Facts of each stored intermediate (the detail page, the API)."""
    if not certificate.chain_pem:
        return []
    chain = x509.load_pem_x509_certificates(certificate.chain_pem.encode("ascii"))
    return [certificate_facts(intermediate) for intermediate in chain]
