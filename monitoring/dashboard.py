"""Reads behind the dashboard (`/`): certificates counted by status, the expiry timeline and
the sales channels needing action.

Everything starts from `visible_to(user)`, so a user sees only their institutions, and each
read is a fixed number of queries whatever the number of certificates and channels: one
aggregate for the counts, one grouped query for the timeline (at most a row per day and
status), one query and one count for the channels.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from certificates import expiry
from certificates.models import Certificate, CertificateStatus, status_q
from certificates.selectors import day_start
from saleschannels.models import (
    PROBE_PROBLEMS,
    RENEWAL_FAILURES_ALERT,
    STATUSES_FAILING,
    ProbeStatus,
    SalesChannel,
)
from saleschannels.status import probe_finding, status_shown

from .charts import WeekBucket, week_buckets

EXPIRED, CRITICAL = CertificateStatus.EXPIRED.value, CertificateStatus.CRITICAL.value
TIMELINE_WEEKS = 13  # 91 days: "the next 90 days", in whole weeks
CHANNEL_ACTIONS_LIMIT = 20


def certificate_status_counts(certificates: QuerySet, *, now: datetime) -> dict[str, int]:
    """How many of `certificates` have each status at `now`, in one aggregate query."""
    return certificates.aggregate(
        **{status: Count("pk", filter=status_q(status, now)) for status in CertificateStatus.values}
    )


def status_counts(*, user, now: datetime) -> dict[str, int]:
    """The user's certificates counted by status (every status present, zeros included)."""
    return certificate_status_counts(Certificate.objects.visible_to(user), now=now)


def expiry_timeline(*, user, now: datetime, weeks: int = TIMELINE_WEEKS) -> list[WeekBucket]:
    """The user's certificates expiring in the coming `weeks`, per week and status.

    Weeks are whole days in the current time zone, starting today, so that each one is exactly
    what the certificates window shows for `?expires_after=<start>&expires_before=<end>`. The
    first week therefore also holds certificates that expired earlier today (status expired).

    The database groups by day and status (at most 7 × weeks × statuses rows, whatever the
    number of certificates); days are folded into weeks here.
    """
    first_day = timezone.localdate(now)
    last_day = first_day + timedelta(days=7 * weeks)
    rows = (
        Certificate.objects.visible_to(user)
        .filter(expires_at__gte=day_start(first_day), expires_at__lt=day_start(last_day))
        .with_status(now)
        .annotate(day=TruncDate("expires_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values("day", "status")
        .annotate(count=Count("pk"))
    )
    counts_by_day: dict = {}
    for row in rows:
        counts_by_day.setdefault(row["day"], {})[row["status"]] = row["count"]
    return week_buckets(first_day, weeks, counts_by_day)


@dataclass(frozen=True)
class Reason:
    text: str
    # "expired" when something is broken or failing now, "critical" when the certificate
    # only expires within days: the colour it is shown in.
    level: str
    advice: str = ""  # what to do, when the reason's words come with advice


@dataclass(frozen=True)
class ChannelAction:
    channel: SalesChannel
    reasons: list[Reason]

    @property
    def level(self) -> str:
        """The most serious of the reasons."""
        levels = {reason.level for reason in self.reasons}
        return EXPIRED if EXPIRED in levels else CRITICAL


@dataclass(frozen=True)
class ChannelActions:
    channels: list[ChannelAction]
    total: int  # all channels needing action, of which `channels` are the most urgent


def _channel_reasons(channel: SalesChannel, *, now: datetime, critical: datetime) -> list[Reason]:
    """Why the channel needs action; days are counted by the one rule of
    certificates/expiry.py, as on the certificate's page and in the digests."""
    reasons = []
    certificate = channel.active_certificate
    if certificate is not None and certificate.expires_at <= critical:
        words = expiry.expires_in_words(certificate.expires_at, now)
        level = EXPIRED if expiry.expired(certificate.expires_at, now) else CRITICAL
        reasons.append(Reason(f"Its certificate {words}", level))
    if channel.probe_status in PROBE_PROBLEMS:
        finding = probe_finding(channel)
        if finding is not None:
            reasons.append(Reason(f"Live probe: {finding.words}", EXPIRED, finding.advice))
        else:
            label = ProbeStatus(channel.probe_status).label.lower()
            reasons.append(Reason(f"Live probe: {label}", EXPIRED))
    if channel.renewal_failing:
        # Said with the channel's status (saleschannels/status.py): the typed reason's plain
        # words and advice, never the raw error text (that is for the log and the admin).
        text = f"Renewal failed {channel.renewal_failures} times in a row"
        advice = ""
        if channel.status in STATUSES_FAILING:
            shown = status_shown(channel)
            text += f": {shown.words}" if shown.words else ""
            advice = shown.advice
        reasons.append(Reason(text, EXPIRED, advice))
    return reasons


def channel_actions(*, user, now: datetime, limit: int = CHANNEL_ACTIONS_LIMIT) -> ChannelActions:
    """The user's sales channels that need an operator, most urgent first, each with its
    reasons: active certificate expired, live probe problem (wrong, expired or no
    certificate served), managed renewal failing, active certificate expiring within the
    critical horizon. Two queries: the first `limit` channels, and the count of all."""
    critical = now + timedelta(days=settings.CERTMGR_CRITICAL_DAYS)
    probe_problem = Q(probe_status__in=PROBE_PROBLEMS)
    renewal_failing = Q(
        ssl_mode=SalesChannel.SslMode.MANAGED, renewal_failures__gte=RENEWAL_FAILURES_ALERT
    )
    channels = SalesChannel.objects.visible_to(user).filter(
        Q(active_certificate__expires_at__lte=critical) | probe_problem | renewal_failing
    )
    urgency = Case(
        When(active_certificate__expires_at__lt=now, then=Value(0)),
        When(probe_problem, then=Value(1)),
        When(renewal_failing, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    most_urgent_first = (
        "urgency",
        F("active_certificate__expires_at").asc(nulls_last=True),
        "hostname",
    )
    rows = (
        channels.select_related("institution", "active_certificate")
        .only(
            "name",
            "hostname",
            "ssl_mode",
            "probe_status",
            "probe_failure",
            "renewal_failures",
            "status",
            "status_reason",
            "status_params",
            "institution__name",
            "active_certificate__name",
            "active_certificate__expires_at",
        )
        .annotate(urgency=urgency)
        .order_by(*most_urgent_first)[:limit]
    )
    shown = [
        ChannelAction(
            channel=channel, reasons=_channel_reasons(channel, now=now, critical=critical)
        )
        for channel in rows
    ]
    return ChannelActions(channels=shown, total=channels.count())
