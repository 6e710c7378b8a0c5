"""Reads of the certificate domain that are more than a one-line query.

Every read starts from Certificate.objects.visible_to(user), so a user never sees another
institution's certificates, and costs a fixed number of queries whatever the table's size.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Prefetch, Q

from .models import Certificate, CertificateStatus, status_q

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


def certificate_list(*, user, filters: CertificateFilters, now: datetime):
    """Visible certificates matching `filters`, annotated with status, sorted, ready to page."""
    from saleschannels.models import SalesChannel

    channels = SalesChannel.objects.only("pk", "name", "hostname", "certificate_id")
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
                queryset=SalesChannel.objects.only(
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
        queryset = queryset.filter(Q(name__icontains=filters.q) | Q(domains__icontains=filters.q))
    return queryset.order_by(*CERTIFICATE_SORTS.get(filters.sort, CERTIFICATE_SORTS["expires_at"]))


def certificate_channels(certificate: Certificate) -> list:
    """Sales channels using the certificate (chosen or deployed), each once, from the prefetch."""
    seen = {}
    for channel in [*certificate.chosen_by_channels.all(), *certificate.active_on_channels.all()]:
        seen.setdefault(channel.pk, channel)
    return list(seen.values())


@dataclass(frozen=True)
class CertificateAlerts:
    expired: int
    critical: int

    @property
    def level(self) -> str:
        if self.expired:
            return CertificateStatus.EXPIRED
        if self.critical:
            return CertificateStatus.CRITICAL
        return ""


def certificate_alerts(*, user, now: datetime) -> CertificateAlerts:
    """Counts of expired and critical certificates the user can see, in one aggregate query.

    The WHERE clause keeps to the index range of certificates expiring before the critical
    horizon, so the cost follows the number of certificates needing attention, not the total.
    """
    horizon = now + timedelta(days=settings.CERTMGR_CRITICAL_DAYS)
    counts = (
        Certificate.objects.visible_to(user)
        .filter(expires_at__lte=horizon)
        .aggregate(
            expired=Count("pk", filter=status_q(CertificateStatus.EXPIRED, now)),
            critical=Count("pk", filter=status_q(CertificateStatus.CRITICAL, now)),
        )
    )
    return CertificateAlerts(expired=counts["expired"], critical=counts["critical"])
