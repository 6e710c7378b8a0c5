"""Reads of the certificate domain that are more than a one-line query.

Every read starts from Certificate.objects.visible_to(user), so a user never sees another
institution's certificates, and costs a fixed number of queries whatever the table's size.
"""

from dataclasses import dataclass
from datetime import date, datetime, time

from django.db import connection
from django.db.models import F, Func, Prefetch, Q
from django.utils import timezone

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
    # Sales channels whose edge serves a wrong, expired or no certificate (the live probe),
    # or whose managed renewal failed twice in a row.
    channels_failing: int = 0

    @property
    def urgent(self) -> int:
        """What is broken now: expired certificates and channels failing the probe."""
        return self.expired + self.channels_failing

    @property
    def level(self) -> str:
        if self.urgent:
            return CertificateStatus.EXPIRED
        if self.critical:
            return CertificateStatus.CRITICAL
        return ""


def _count_sql(queryset) -> tuple[str, tuple]:
    """SQL and parameters of `SELECT COUNT(id) FROM ... WHERE ...` for a queryset."""
    counted = queryset.order_by().values(n=Func(F("pk"), function="COUNT"))
    return counted.query.sql_with_params()


def certificate_alerts(*, user, now: datetime) -> CertificateAlerts:
    """What the banner shows: counts of expired and critical certificates the user can see and
    of their sales channels needing action (probe or renewal failing), in one query made of
    three scalar subqueries.

    Each subquery keeps to an index range (certificates expiring before now or the critical
    horizon, channels with a bad probe status or failing renewals), so the cost follows the
    number of things needing attention, not the size of the tables.
    """
    from saleschannels.models import channels_needing_action

    certificates = Certificate.objects.visible_to(user)
    parts = [
        _count_sql(certificates.filter(status_q(CertificateStatus.EXPIRED, now))),
        _count_sql(certificates.filter(status_q(CertificateStatus.CRITICAL, now))),
        _count_sql(channels_needing_action(user)),
    ]
    sql = "SELECT " + ", ".join(f"({part_sql})" for part_sql, _ in parts)
    params = [param for _, part_params in parts for param in part_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        expired, critical, channels_failing = cursor.fetchone()
    return CertificateAlerts(expired=expired, critical=critical, channels_failing=channels_failing)
