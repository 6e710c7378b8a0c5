"""Expiry monitoring, step 1: find what needs an operator and record each finding once
(README, "Expiry monitoring").

`findings_collect(now)` records the new findings as Notification rows.

- Certificates: each certificate's thresholds are stored with it (ExpiryThreshold, by
  certificates.services.certificate_upload), so a run reads the thresholds crossed since the
  last run (one index range on crossed_at, from a watermark) and writes nothing but the
  findings: no state of the certificates moves. Of each certificate only the *newest*
  threshold crossed is recorded (a certificate uploaded with 5 days left is reported once, as
  "7d"; a run after downtime reports "3d", not 14d, 7d and 3d). Not reported: certificates
  that a newer one `replaces` (renewed: their thresholds are dropped then), and expiries older
  than EXPIRED_REPORT_WINDOW (history, not news). Unverified certificates (expiry typed by
  hand) are reported like the others.
- Sales channels (each query follows an index of the few channels concerned): a managed
  renewal failing twice or more in a row (once per certificate it is trying to replace), a
  probe problem (once per status and served certificate), and a wrongly served certificate
  crossing a day threshold (a channel serving its active certificate needs nothing more: that
  certificate is reported itself). A renewal finding says the channel's status in its
  words (saleschannels/status.py), never the raw error text of the CA.

The unique keys of Notification make every finding once-only: rows are written with
INSERT ... ON CONFLICT DO NOTHING (one INSERT ... SELECT for all certificates), so reruns,
restarts and two runs at once record it once.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    F,
)

from certificates import thresholds as rules
from certificates.models import (
    Certificate,
    ExpiryThreshold,
)
from saleschannels.models import (
    PROBE_PROBLEMS,
    RENEWAL_FAILURES_ALERT,
    STATUSES_FAILING,
    ProbeFailure,
    ProbeStatus,
    SalesChannel,
)
from saleschannels.status import probe_finding, status_shown

from .models import ExpiryCheck, Notification

logger = logging.getLogger(__name__)

# An expiry further back than this is history: it is not reported (e.g. on the first run).
EXPIRED_REPORT_WINDOW = timedelta(days=7)
# Channels in trouble are handled this many at a time (bounded queries and memory).
BATCH_SIZE = 1000
# Each run also reads this far back before where the last one stopped (see
# _certificate_findings_record).
WINDOW_OVERLAP = timedelta(minutes=15)

RENEWAL_FAILING = "renewal-failing"


def findings_collect(*, now: datetime) -> int:
    """Record every new finding at `now` (see the module docstring); returns how many."""
    return _certificate_findings_record(now) + _channel_findings_record(now)


def _certificate_findings_record(now: datetime) -> int:
    """Record the thresholds crossed since the last run, the newest of each certificate only
    (a run after downtime reports "3d", not 14d, 7d and 3d at once).

    The window starts WINDOW_OVERLAP before where the last run stopped, so that a threshold
    stored by a transaction that committed after that run read is still seen; what the
    overlap brings back is recorded already and skipped. The first run ever reads from the
    beginning. A renewed certificate has no thresholds left (certificate_thresholds_drop).

    The database does it all in one INSERT ... SELECT ... ON CONFLICT DO NOTHING: nothing
    travels through Python, nothing is written to the certificates, and the unique key of
    the findings skips what is recorded already. The statement is written out: building
    and compiling it with the ORM took 1.5 ms of every run, a quarter of the raw count that
    bench/expiry.py measures check_expiry against.
    """
    mark = ExpiryCheck.objects.filter(pk=1).values_list("checked_until", flat=True).first()
    adapt = connection.ops.adapt_datetimefield_value
    params = [Notification.Kind.CERTIFICATE_EXPIRY.value, adapt(now), adapt(now)]
    if mark is not None:
        params.append(adapt(mark - WINDOW_OVERLAP))
    # Expiries further back are history, not news (e.g. on the first run).
    params.append(adapt(now - EXPIRED_REPORT_WINDOW))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_findings_insert_sql(connection.vendor, windowed=mark is not None), params)
        _watermark_move(mark, now)
        return cursor.rowcount


@functools.cache
def _findings_insert_sql(vendor: str, *, windowed: bool) -> str:
    """The INSERT of _certificate_findings_record; its parameters: the finding kind, the run's
    instant (twice), the window's start when `windowed`, and the oldest expiry reported.
    (`vendor` keys the cache: the names are quoted for it.)"""
    table, column = _table, _column
    columns = ", ".join(column(Notification, name) for name in _FINDING_COLUMNS)
    since = f"AND threshold.{column(ExpiryThreshold, 'crossed_at')} > %s" if windowed else ""
    # The names come from the models' meta; every value is a parameter.
    return f"""
        INSERT INTO {table(Notification)} ({columns})
        SELECT certificate.{column(Certificate, "institution")}, crossed.certificate_id,
               certificate.{column(Certificate, "expires_at")}, %s, crossed.name, '', '{{}}',
               '', %s
        FROM (
            SELECT threshold.{column(ExpiryThreshold, "certificate")} AS certificate_id,
                   threshold.{column(ExpiryThreshold, "name")} AS name,
                   ROW_NUMBER() OVER (
                       PARTITION BY threshold.{column(ExpiryThreshold, "certificate")}
                       ORDER BY threshold.{column(ExpiryThreshold, "crossed_at")} DESC
                   ) AS newest
            FROM {table(ExpiryThreshold)} threshold
            WHERE threshold.{column(ExpiryThreshold, "crossed_at")} <= %s {since}
        ) crossed
        JOIN {table(Certificate)} certificate
          ON certificate.{column(Certificate, "id")} = crossed.certificate_id
        WHERE crossed.newest = 1 AND certificate.{column(Certificate, "expires_at")} > %s
        ON CONFLICT DO NOTHING
    """  # noqa: S608


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


# The Notification columns the INSERT writes, in its order.
_FINDING_COLUMNS = (
    "institution",
    "certificate",
    "expires_at",
    "kind",
    "threshold",
    "episode",
    "details",
    "webhook_error",
    "created_at",
)


def _watermark_move(mark: datetime | None, now: datetime) -> None:
    """Record that check_expiry looked up to `now` (never backwards: runs may overlap)."""
    if mark is None:
        ExpiryCheck.objects.get_or_create(pk=1, defaults={"checked_until": now})
    ExpiryCheck.objects.filter(pk=1, checked_until__lt=now).update(checked_until=now)


def _channel_findings_record(now: datetime) -> int:
    """Record what is new about the channels in trouble. One query finds the channels with a
    finding not recorded yet (none, on most runs); the findings of those are then built and
    checked against what is recorded."""
    horizon = now + timedelta(days=max(settings.CERTMGR_NOTIFY_DAYS, default=0))
    with connection.cursor() as cursor:
        cursor.execute(
            _channels_concerned_sql(connection.vendor),
            [
                SalesChannel.SslMode.MANAGED.value,
                RENEWAL_FAILURES_ALERT,
                RENEWAL_FAILING,
                *(status.value for status in PROBE_PROBLEMS),
                SalesChannel.SslMode.MANAGED.value,
                ProbeStatus.MISMATCH.value,
                connection.ops.adapt_datetimefield_value(horizon),
            ],
        )
        ids = [row[0] for row in cursor.fetchall()]
    recorded = 0
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        concerned = (
            SalesChannel.objects.filter(pk__in=batch)
            .annotate(active_expires_at=F("active_certificate__expires_at"))
            .order_by()
            .values_list(*_CHANNEL_FIELDS, named=True)
        )
        findings = []
        for channel in concerned:
            if _renewal_alert(channel):
                findings.append(_renewal_finding(channel))
            if _probe_alert(channel):
                findings.extend(_probe_findings(channel, now))
        keys = set(
            Notification.objects.filter(channel_id__in=batch).values_list(
                "channel_id", "threshold", "episode"
            )
        )
        new = [
            finding
            for finding in findings
            if (finding.channel_id, finding.threshold, finding.episode) not in keys
        ]
        Notification.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
        recorded += len(new)
    return recorded


def _renewal_alert(channel) -> bool:
    return (
        channel.ssl_mode == SalesChannel.SslMode.MANAGED
        and channel.renewal_failures >= RENEWAL_FAILURES_ALERT
    )


def _probe_alert(channel) -> bool:
    # A channel just switched to managed has nothing deployed until its first certificate is
    # issued: its probe fails, and says nothing an operator should act on (a failing issuance
    # is reported as renewal failing).
    waiting = channel.ssl_mode == SalesChannel.SslMode.MANAGED and not channel.active_certificate_id
    return channel.probe_status in PROBE_PROBLEMS and not waiting


@functools.cache
def _channels_concerned_sql(vendor: str) -> str:
    """The channels with a finding not recorded yet: renewal failing (_renewal_alert) or a
    probe problem (_probe_alert) whose episode has no finding, and those serving a wrong
    certificate within the furthest day threshold (its thresholds are worked out in Python:
    looked at on every run while it lasts). Written out, like the certificates' INSERT:
    building and compiling it with the ORM took ten times what the database takes to run it.
    Its parameters: managed, the alert count, the renewal threshold name, the probe problems,
    managed, mismatch, the horizon.

    The episodes are those of _renewal_episode and _probe_episode, in SQL (a test holds them
    together): CAST AS TEXT, || and SUBSTR mean the same in SQLite and PostgreSQL."""
    channel = {
        name: f"channel.{_column(SalesChannel, name)}"
        for name in (
            "id",
            "ssl_mode",
            "renewal_failures",
            "active_certificate",
            "probe_status",
            "probe_fingerprint",
            "probe_expires_at",
        )
    }
    finding = {
        name: f"finding.{_column(Notification, name)}"
        for name in ("channel", "threshold", "episode")
    }
    active = f"COALESCE(CAST({channel['active_certificate']} AS TEXT), 'none')"
    served = f"SUBSTR(REPLACE({channel['probe_fingerprint']}, ':', ''), 1, 16)"
    # The names come from the models' meta; every value is a parameter.
    recorded = (
        f"SELECT 1 FROM {_table(Notification)} finding "  # noqa: S608
        f"WHERE {finding['channel']} = {channel['id']}"
    )
    problems = ", ".join(["%s"] * len(PROBE_PROBLEMS))
    return f"""
        SELECT {channel["id"]} FROM {_table(SalesChannel)} channel
        WHERE (
            {channel["ssl_mode"]} = %s AND {channel["renewal_failures"]} >= %s
            AND NOT EXISTS (
                {recorded} AND {finding["threshold"]} = %s
                AND {finding["episode"]} = 'certificate-' || {active}
            )
        ) OR (
            {channel["probe_status"]} IN ({problems})
            AND NOT ({channel["ssl_mode"]} = %s AND {channel["active_certificate"]} IS NULL)
            AND NOT EXISTS (
                {recorded} AND {finding["threshold"]} = 'probe-' || {channel["probe_status"]}
                AND {finding["episode"]} = {active} || '/' || COALESCE(NULLIF({served}, ''), 'none')
            )
        ) OR (
            {channel["probe_status"]} = %s AND {channel["probe_expires_at"]} <= %s
        )
    """  # noqa: S608


_CHANNEL_FIELDS = (
    "pk",
    "institution_id",
    "name",
    "hostname",
    "ssl_mode",
    "active_certificate_id",
    "active_expires_at",
    "renewal_failures",
    "renewal_next_attempt_at",
    "status",
    "status_reason",
    "status_params",
    "probe_status",
    "probe_fingerprint",
    "probe_expires_at",
    "probe_failure",
    "probe_checked_at",
)


# Which occurrence a channel finding is (Notification.episode). _channels_concerned_sql says
# the same in SQL.


def _renewal_episode(channel) -> str:
    # One streak of failures is about replacing one certificate: a renewal that succeeds
    # switches the channel to a new one, so the next streak is a new episode.
    return f"certificate-{channel.active_certificate_id or 'none'}"


def _probe_episode(channel) -> str:
    # Once per status and served certificate: the same wrong certificate seen hourly is one
    # finding, another one served (or the channel's certificate changing) is a new one.
    served = channel.probe_fingerprint.replace(":", "")[:16] or "none"
    return f"{channel.active_certificate_id or 'none'}/{served}"


def _renewal_finding(channel) -> Notification:
    """`channel`: a row of _CHANNEL_FIELDS. The details say the channel's status as its page
    does (label, the typed reason's words and advice: saleschannels/status.py), never the raw
    error text, which stays in the log and the admin."""
    shown = status_shown(channel) if channel.status in STATUSES_FAILING else None
    return Notification(
        institution_id=channel.institution_id,
        kind=Notification.Kind.RENEWAL_FAILING,
        channel_id=channel.pk,
        threshold=RENEWAL_FAILING,
        episode=_renewal_episode(channel),
        expires_at=channel.active_expires_at,
        details={
            "name": channel.name,
            "hostname": channel.hostname,
            "failures": channel.renewal_failures,
            "status": channel.status,
            "label": shown.label if shown else "",
            "words": shown.words if shown else "",
            "advice": shown.advice if shown else "",
            "next_attempt_at": (
                channel.renewal_next_attempt_at.isoformat()
                if channel.renewal_next_attempt_at
                else None
            ),
        },
    )


def _probe_findings(channel, now: datetime) -> list[Notification]:
    """`channel`: a row of _CHANNEL_FIELDS."""
    episode = _probe_episode(channel)
    details = {
        "name": channel.name,
        "hostname": channel.hostname,
        "status": channel.probe_status,
        # The reason's fixed plain words: nothing a remote server said goes into a digest.
        "error": ProbeFailure(channel.probe_failure).label if channel.probe_failure else "",
        "checked_at": channel.probe_checked_at.isoformat() if channel.probe_checked_at else None,
    }
    # A failure with a typed reason (the hostname does not resolve) says it with its advice.
    finding = probe_finding(channel)
    if finding is not None:
        details.update(reason=finding.reason, reason_words=finding.words, advice=finding.advice)
    findings = [
        Notification(
            institution_id=channel.institution_id,
            kind=Notification.Kind.PROBE_PROBLEM,
            channel_id=channel.pk,
            threshold=f"probe-{channel.probe_status}",
            episode=episode,
            expires_at=channel.probe_expires_at,
            details=details,
        )
    ]
    if channel.probe_status == ProbeStatus.MISMATCH and channel.probe_expires_at:
        latest = rules.threshold_latest_crossed(
            rules.certificate_thresholds(
                not_before=None,
                not_after=channel.probe_expires_at,
                days=settings.CERTMGR_NOTIFY_DAYS,
            ),
            now,
        )
        if latest is not None:
            findings.append(
                Notification(
                    institution_id=channel.institution_id,
                    kind=Notification.Kind.PROBE_PROBLEM,
                    channel_id=channel.pk,
                    threshold=f"served-{latest.name}",
                    episode=episode,
                    expires_at=channel.probe_expires_at,
                    details=details,
                )
            )
    return findings
