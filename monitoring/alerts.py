"""The alert state of every back-office page (the banner in templates/base.html): expired and
critical certificates, and sales channels needing action, counted in one query."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Exists, F, Func, OuterRef

from certificates.models import Certificate, CertificateStatus, status_q
from saleschannels.models import SalesChannel, channels_needing_action


@dataclass(frozen=True)
class CertificateAlerts:
    expired: int
    critical: int
    # Sales channels whose edge serves a wrong, expired or no certificate (the live probe),
    # or whose managed renewal failed twice in a row.
    channels_failing: int = 0
    # Of the expired certificates, those a sales channel still serves (its active
    # certificate): only their webshops show security errors, so the banner says so of them
    # alone (templates/_cert_alert.html).
    expired_served: int = 0

    @property
    def urgent(self) -> int:
        """What is broken now: expired certificates and channels failing the probe."""
        return self.expired + self.channels_failing

    @property
    def critical_days(self) -> int:
        """The critical horizon in days, as the banner says it ("expire within 7 days")."""
        return settings.CERTMGR_CRITICAL_DAYS

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
    """What the banner shows: counts of expired and critical certificates the user can see, of
    the expired ones a sales channel still serves, and of their sales channels needing action
    (probe or renewal failing), in one query made of four scalar subqueries.

    Each subquery keeps to an index range (certificates expiring before now or the critical
    horizon, channels with a bad probe status or failing renewals), so the cost follows the
    number of things needing attention, not the size of the tables.
    """
    certificates = Certificate.objects.visible_to(user)
    parts = [
        _count_sql(certificates.filter(status_q(CertificateStatus.EXPIRED, now))),
        _count_sql(certificates.filter(status_q(CertificateStatus.CRITICAL, now))),
        _count_sql(channels_needing_action(user)),
        _count_sql(
            certificates.filter(status_q(CertificateStatus.EXPIRED, now)).filter(
                Exists(SalesChannel.objects.filter(active_certificate=OuterRef("pk")))
            )
        ),
    ]
    sql = "SELECT " + ", ".join(f"({part_sql})" for part_sql, _ in parts)
    params = [param for _, part_params in parts for param in part_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        expired, critical, channels_failing, expired_served = cursor.fetchone()
    return CertificateAlerts(
        expired=expired,
        critical=critical,
        channels_failing=channels_failing,
        expired_served=expired_served,
    )
