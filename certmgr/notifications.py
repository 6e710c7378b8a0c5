"""Expiry monitoring: find what needs an operator, record each finding once, tell each
institution in one digest per run (e-mail, and an optional webhook), and give platform staff a
daily summary.

A run (`expiry_check`, Celery beat hourly) has two steps.

1. `findings_collect(now)` records the new findings as Notification rows.

   - Certificates: each certificate's thresholds are stored with it (ExpiryThreshold, by
     certificate_upload), so a run reads the thresholds crossed since the last run (one index
     range on crossed_at, from a watermark) and writes nothing but the findings: no state of
     the certificates moves. Of each certificate only the *newest* threshold crossed is
     recorded (a certificate uploaded with 5 days left is reported once, as "7d"; a run after
     downtime reports "3d", not 14d, 7d and 3d). Not reported: certificates that a newer one
     `replaces` (renewed: their thresholds are dropped then), and expiries older than
     EXPIRED_REPORT_WINDOW (history, not news).
     Unverified certificates (expiry typed by hand) are reported like the others.
   - Sales channels (each query follows an index of the few channels concerned): a managed
     renewal failing twice or more in a row (once per certificate it is trying to replace),
     a probe problem (once per status and served certificate), and a wrongly served
     certificate crossing a day threshold (a channel serving its active certificate needs
     nothing more: that certificate is reported itself).

   The unique keys of Notification make every finding once-only: rows are written with
   INSERT ... ON CONFLICT DO NOTHING (one INSERT ... SELECT for all certificates), so reruns,
   restarts and two runs at once record it once.

2. `findings_deliver(now)` claims the findings not e-mailed yet with a conditional update
   (emailed_at set to this run's claim time where still empty), so two runs never send the
   same finding, and sends one digest per institution: e-mail to its notification addresses
   (its managers' when it has none), then its webhook. A failed e-mail gives its claim back and
   is tried again by the next runs for UNSENT_RETRY_WINDOW. A webhook gets WEBHOOK_ATTEMPTS
   tries; its failure is recorded and blocks neither the e-mail nor the other institutions.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import unquote, urlsplit

import certifi
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Q,
)
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util import make_headers

from acme_client.renewal import renewal_due_at
from institutions.models import Institution, Membership
from saleschannels.models import (
    PROBE_PROBLEMS,
    RENEWAL_FAILURES_ALERT,
    ProbeStatus,
    SalesChannel,
)

from . import thresholds as rules
from .models import (
    Certificate,
    CertificateStatus,
    ExpiryCheck,
    ExpiryThreshold,
    Notification,
    status_q,
)

logger = logging.getLogger(__name__)

# An expiry further back than this is history: it is not reported (e.g. on the first run).
EXPIRED_REPORT_WINDOW = timedelta(days=7)
# A digest whose e-mail failed is tried again by the following runs for this long.
UNSENT_RETRY_WINDOW = timedelta(days=3)
# Crossed thresholds and findings are handled this many at a time (bounded queries and memory).
BATCH_SIZE = 1000
# Each run also reads this far back before where the last one stopped (see
# _certificate_findings_record).
WINDOW_OVERLAP = timedelta(minutes=15)
# A digest lists this many findings, the most urgent first, and then how many more there are
# (all are recorded and marked sent): a list of thousands helps nobody.
DIGEST_MAX_FINDINGS = 100
WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT = 5.0
# Seconds to wait before the 2nd and the 3rd attempt.
WEBHOOK_BACKOFF = (1.0, 3.0)

RENEWAL_FAILING = "renewal-failing"


# --- thresholds under the current settings ------------------------------------------------


def certificate_thresholds(certificate: Certificate) -> list[rules.Threshold]:
    """The certificate's expiry thresholds (thresholds.py) under the current settings.

    For a managed certificate, those at or before its planned renewal are dropped: the
    platform renews it then, and a failing renewal is reported as its own finding.
    """
    return thresholds_for(
        expires_at=certificate.expires_at,
        not_before=certificate.not_before,
        source=certificate.source,
    )


def thresholds_for(
    *, expires_at: datetime, not_before: datetime | None, source: str
) -> list[rules.Threshold]:
    """certificate_thresholds() from the certificate's values (a row, or a migration's model)."""
    renews_at = None
    if source == Certificate.Source.MANAGED and not_before:
        renews_at = renewal_due_at(not_before=not_before, not_after=expires_at)
    return rules.certificate_thresholds(
        not_before=not_before,
        not_after=expires_at,
        days=settings.CERTMGR_NOTIFY_DAYS,
        short_lived_days=settings.CERTMGR_SHORT_LIVED_DAYS,
        renews_at=renews_at,
    )


def certificate_thresholds_store(certificate: Certificate, *, now: datetime) -> None:
    """Store when a new certificate is to be warned about (ExpiryThreshold rows): each
    threshold ahead, and the newest one already crossed, due at once."""
    ExpiryThreshold.objects.bulk_create(
        ExpiryThreshold(
            certificate=certificate, name=threshold.name, crossed_at=threshold.crossed_at
        )
        for threshold in rules.thresholds_due(certificate_thresholds(certificate), now)
    )


def certificate_thresholds_drop(certificate: Certificate) -> None:
    """A replaced certificate is not warned about any more: drop its thresholds (those
    crossed and not recorded yet too, so that check_expiry need not look for renewals)."""
    ExpiryThreshold.objects.filter(certificate=certificate).delete()


def thresholds_rebuild(*, now: datetime) -> int:
    """Store again the thresholds ahead of every certificate in use, under the current
    settings (after CERTMGR_NOTIFY_DAYS or CERTMGR_SHORT_LIVED_DAYS changed). Thresholds
    already crossed are left as they are: they were told. Returns how many are stored."""
    current = (
        Certificate.objects.filter(replaced_by__isnull=True)
        .order_by("pk")
        .values_list("pk", "expires_at", "not_before", "source")
    )
    stored, last_pk = 0, 0
    while rows := list(current.filter(pk__gt=last_pk)[:BATCH_SIZE]):
        last_pk = rows[-1][0]
        ahead = [
            ExpiryThreshold(certificate_id=pk, name=threshold.name, crossed_at=threshold.crossed_at)
            for pk, expires_at, not_before, source in rows
            for threshold in thresholds_for(
                expires_at=expires_at, not_before=not_before, source=source
            )
            if threshold.crossed_at > now
        ]
        with transaction.atomic():
            ExpiryThreshold.objects.filter(
                certificate_id__in=[row[0] for row in rows], crossed_at__gt=now
            ).delete()
            ExpiryThreshold.objects.bulk_create(ahead, ignore_conflicts=True)
        stored += len(ahead)
    return stored


# --- step 1: findings ---------------------------------------------------------------------


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
    "renewal_last_error",
    "renewal_next_attempt_at",
    "probe_status",
    "probe_fingerprint",
    "probe_expires_at",
    "probe_error",
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
    """`channel`: a row of _CHANNEL_FIELDS."""
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
            "error": channel.renewal_last_error[:500],
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
        "error": channel.probe_error[:500],
        "checked_at": channel.probe_checked_at.isoformat() if channel.probe_checked_at else None,
    }
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


# --- step 2: delivery ---------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One line of a digest, as the e-mail and the webhook show it."""

    kind: str
    threshold: str
    title: str
    name: str
    hostnames: list[str]
    expires_at: datetime | None
    days_left: int | None
    when: str  # "7 days left", "expired 2 days ago"
    action: str
    url: str

    @property
    def expires_text(self) -> str:
        # Formatted here rather than with the |date filter: a digest can list thousands.
        return self.expires_at.strftime("%Y-%m-%d %H:%M UTC") if self.expires_at else ""

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "threshold": self.threshold,
            "title": self.title,
            "name": self.name,
            "hostnames": self.hostnames,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "days_left": self.days_left,
            "action": self.action,
            "url": self.url,
        }


@dataclass
class DigestResult:
    """What one run told one institution."""

    institution: Institution
    findings: list[Finding]
    recipients: list[str] = field(default_factory=list)
    emailed: bool = False
    email_error: str = ""
    webhook: str = ""  # "", "delivered", or why it failed


@dataclass
class ExpiryCheckReport:
    recorded: int
    digests: list[DigestResult]


def expiry_check(*, now: datetime | None = None) -> ExpiryCheckReport:
    """One run inline: record the new findings, then send what is not sent yet. (Celery's
    check_expiry records, then sends each institution's digest in a task of its own.)"""
    now = now or timezone.now()
    recorded = findings_collect(now=now)
    return ExpiryCheckReport(recorded=recorded, digests=findings_deliver(now=now))


def _unsent(now: datetime):
    return Notification.objects.filter(
        emailed_at__isnull=True, created_at__gte=now - UNSENT_RETRY_WINDOW
    ).order_by()


def institutions_with_unsent(*, now: datetime) -> list[int]:
    """The institutions that have findings to send (the partial index of unsent findings)."""
    return sorted(set(_unsent(now).values_list("institution_id", flat=True)))


# What delivery reads of a finding and of its certificate (a row, not a model instance: a
# run can send thousands).
_PENDING_FIELDS = (
    "pk",
    "institution_id",
    "kind",
    "threshold",
    "expires_at",
    "details",
    "certificate_id",
    "channel_id",
    "webhook_delivered_at",
    "webhook_error",
    "certificate_name",
    "certificate_domains",
    "certificate_kind",
    "certificate_source",
)


def findings_deliver(*, now: datetime, institution_id: int | None = None) -> list[DigestResult]:
    """Claim the findings not e-mailed yet (of one institution, or all) and send one digest
    per institution."""
    pending = _unsent(now)
    if institution_id is not None:
        pending = pending.filter(institution_id=institution_id)
    ids = list(pending.values_list("pk", flat=True))
    if not ids:
        return []
    # The claim: emailed_at set to this run's own instant where it is still empty; what holds
    # that instant afterwards is ours, and no other run sends it. Certificate findings come
    # with what the digest shows of their certificate, and whether it was renewed since:
    # those are left out (their claim stays: there is nothing to send about them any more).
    claim = timezone.now()
    claimed = []
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        Notification.objects.filter(pk__in=chunk, emailed_at__isnull=True).update(emailed_at=claim)
        claimed.extend(
            Notification.objects.filter(pk__in=chunk, emailed_at=claim)
            .exclude(Exists(Certificate.objects.filter(replaces=OuterRef("certificate_id"))))
            .annotate(
                certificate_name=F("certificate__name"),
                certificate_domains=F("certificate__domains"),
                certificate_kind=F("certificate__kind"),
                certificate_source=F("certificate__source"),
            )
            .order_by("pk")
            .values_list(*_PENDING_FIELDS, named=True)
        )
    by_institution: dict[int, list] = defaultdict(list)
    for notification in claimed:
        by_institution[notification.institution_id].append(notification)
    institutions = Institution.objects.in_bulk(list(by_institution))
    urls = _DetailUrls()
    results = []
    for institution in sorted(institutions.values(), key=lambda item: item.name):
        results.append(
            _digest_deliver(
                institution, by_institution[institution.pk], now=now, claim=claim, urls=urls
            )
        )
    return results


def _digest_deliver(
    institution: Institution, notifications: list, *, now: datetime, claim, urls: _DetailUrls
) -> DigestResult:
    ids = [notification.pk for notification in notifications]
    result = DigestResult(institution=institution, findings=[])
    views: dict[int, Finding] = {}
    try:
        views = {
            notification.pk: finding_view(notification, now, urls) for notification in notifications
        }
        result.findings = sorted(views.values(), key=_urgency)
        result.recipients = institution_recipients(institution)
        if result.recipients:
            digest_email(institution, result.findings, result.recipients).send()
            result.emailed = True
        else:
            logger.warning(
                "institution %s has no notification address and no manager with an e-mail "
                "address: %d findings not e-mailed",
                institution.slug,
                len(ids),
            )
    except Exception as error:  # this institution's e-mail only: the others go on
        logger.exception("digest e-mail to institution %s failed", institution.slug)
        result.email_error = f"{error.__class__.__name__}: {error}"
        _notifications_update(ids, only_claim=claim, emailed_at=None)
    if views:
        try:
            result.webhook = _webhook_deliver(institution, notifications, views)
        except Exception as error:  # never let a webhook stop the run
            logger.exception("webhook of institution %s failed", institution.slug)
            result.webhook = error.__class__.__name__
    # Counts only: the addresses are the institution's business, not the log's.
    logger.info(
        "digest for institution %s: %d finding(s), e-mailed %s, webhook %s",
        institution.pk,
        len(ids),
        result.emailed,
        result.webhook or "none",
        extra={
            "event": "digest_sent",
            "institution_id": institution.pk,
            "notification_ids": ids,
            "findings": len(ids),
            "emailed": result.emailed,
            "recipients": len(result.recipients),
            "webhook": result.webhook,
        },
    )
    return result


def _webhook_deliver(
    institution: Institution, notifications: list, views: dict[int, Finding]
) -> str:
    """POST the findings not posted yet (a digest whose e-mail is retried is not posted
    twice); returns "delivered", why it failed, or "" when there was nothing to post."""
    unposted = sorted(
        n.pk for n in notifications if n.webhook_delivered_at is None and not n.webhook_error
    )
    if not unposted:
        return ""
    if not institution.webhook_url:
        return ""  # left as they are: nothing was posted
    payload = webhook_payload(institution, sorted((views[pk] for pk in unposted), key=_urgency))
    error = webhook_post(institution.webhook_url, payload)
    if error:
        logger.warning("webhook of institution %s failed: %s", institution.slug, error)
        _notifications_update(unposted, webhook_error=error)
        return error
    _notifications_update(unposted, webhook_delivered_at=timezone.now())
    return "delivered"


def _notifications_update(ids: list[int], *, only_claim=None, **values) -> None:
    """Update these notifications, BATCH_SIZE ids per statement (a first run can record
    tens of thousands for one institution)."""
    for start in range(0, len(ids), BATCH_SIZE):
        rows = Notification.objects.filter(pk__in=ids[start : start + BATCH_SIZE])
        if only_claim is not None:
            rows = rows.filter(emailed_at=only_claim)
        rows.update(**values)


def institution_recipients(institution: Institution) -> list[str]:
    """The institution's notification addresses, or else its managers' e-mail addresses."""
    addresses = institution.notification_email_list
    if addresses:
        return addresses
    managers = get_user_model().objects.filter(
        is_active=True,
        memberships__institution=institution,
        memberships__role=Membership.Role.MANAGER,
    )
    return sorted(set(managers.exclude(email="").values_list("email", flat=True)))


def _absolute(path: str) -> str:
    return settings.CERTMGR_BASE_URL.rstrip("/") + path


class _DetailUrls:
    """Absolute URLs of detail pages; reverse() runs once per page kind and run, not per
    finding (a first run can report tens of thousands)."""

    def __init__(self):
        base = settings.CERTMGR_BASE_URL.rstrip("/")
        self.certificate = base + reverse("certificate_detail", args=[999999999])
        self.channel = base + reverse("channel_detail", args=[999999999])

    @staticmethod
    def of(pattern: str, pk: int) -> str:
        return pattern.replace("999999999", str(pk))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _when(expires_at: datetime | None, now: datetime) -> tuple[int | None, str]:
    """(days left, the same in words)."""
    if expires_at is None:
        return None, ""
    if expires_at <= now:
        ago = (now - expires_at).days
        return -ago, "expired today" if ago == 0 else f"expired {_plural(ago, 'day')} ago"
    left = (expires_at - now).days
    return left, "less than a day left" if left == 0 else f"{_plural(left, 'day')} left"


_PROBE_TITLES = {
    "probe-mismatch": "Serves another certificate than the one deployed",
    "probe-expired": "Serves an expired certificate",
    "probe-failed": "TLS handshake fails",
}


def finding_view(notification, now: datetime, urls: _DetailUrls) -> Finding:
    """What a recorded finding (a row of _PENDING_FIELDS) says to an operator: title, what to
    do, link."""
    details = notification.details or {}
    days_left, when = _when(notification.expires_at, now)
    threshold = notification.threshold
    if notification.kind == Notification.Kind.CERTIFICATE_EXPIRY:
        url = urls.of(urls.certificate, notification.certificate_id)
        expired = notification.expires_at <= now
        title = (
            "Certificate expired"
            if expired
            else "Certificate expires within a day"
            if days_left == 0
            else f"Certificate expires in {_plural(days_left, 'day')}"
        )
        return Finding(
            kind=notification.kind,
            threshold=threshold,
            title=title,
            name=notification.certificate_name,
            hostnames=list(notification.certificate_domains or [])[:20],
            expires_at=notification.expires_at,
            days_left=days_left,
            when=when,
            action=_certificate_action(
                source=notification.certificate_source,
                kind=notification.certificate_kind,
                expired=expired,
            ),
            url=url,
        )
    url = urls.of(urls.channel, notification.channel_id)
    hostname = details.get("hostname", "")
    if notification.kind == Notification.Kind.RENEWAL_FAILING:
        title = "Certificate renewal failing"
        action = (
            f"The platform could not renew the certificate of {hostname} "
            f"({_plural(details.get('failures', 0), 'attempt')} in a row failed"
            + (f": {details['error']}" if details.get("error") else "")
            + f"). Check that {hostname} points at the platform in DNS, then use "
            "Renew now on the sales channel page; the current certificate stays served "
            "until a new one is in place."
        )
    elif threshold.startswith("served-"):
        title = f"The certificate served expires: {when}" if when else "Served certificate"
        action = (
            f"{hostname} serves a certificate that is not the one deployed for it, and that "
            "one is about to expire. Save the sales channel's SSL management again to "
            "redeploy; if it stays, contact platform support."
        )
    else:
        title = _PROBE_TITLES.get(threshold, "Served certificate wrong")
        action = (
            f"Visitors of {hostname} may see a security error. Check the sales channel's "
            "SSL management and save it again to redeploy; if it stays, contact platform "
            "support." + (f" Probe: {details['error']}" if details.get("error") else "")
        )
    return Finding(
        kind=notification.kind,
        threshold=threshold,
        title=title,
        name=details.get("name", ""),
        hostnames=[hostname] if hostname else [],
        expires_at=notification.expires_at,
        days_left=days_left,
        when=when,
        action=action,
        url=url,
    )


def _certificate_action(*, source: str, kind: str, expired: bool) -> str:
    if source == Certificate.Source.MANAGED:
        return (
            "The platform renews this certificate itself and is late: open the sales channel "
            "that uses it, check its renewal status and use Renew now."
        )
    if kind.startswith("apple_"):
        return "Renew it in your Apple Developer account, then upload the new file in certmgr."
    urgency = "Visitors see security errors now. " if expired else ""
    return (
        f"{urgency}Get a renewed certificate from your certificate authority, upload it in "
        "certmgr and choose it in the SSL management of the sales channels using this one "
        "(or switch them to a certificate managed by the platform)."
    )


def _urgency(finding: Finding):
    """Most urgent first: what expires (or expired) soonest, channel problems first."""
    return (
        finding.expires_at is not None,
        finding.expires_at or datetime.min.replace(tzinfo=UTC),
        finding.name,
    )


def digest_email(
    institution: Institution, findings: list[Finding], recipients: list[str]
) -> EmailMultiAlternatives:
    """The digest e-mail of one run for one institution, plain text and HTML.

    The templates hold the frame; the finding lines are built here (digest_lines_text,
    digest_rows_html), which costs a tenth of a template loop over a hundred findings.
    """
    listed = findings[:DIGEST_MAX_FINDINGS]
    context = {
        "institution": institution,
        "count": len(findings),
        "lines_text": digest_lines_text(listed),
        "rows_html": digest_rows_html(listed),
        "more": max(0, len(findings) - DIGEST_MAX_FINDINGS),
        "list_url": _absolute(reverse("certificate_list"))
        + f"?institution={institution.slug}&sort=expires_at",
        "settings_url": _absolute(reverse("institution_notifications", args=[institution.slug])),
    }
    subject = f"[certmgr] {institution.name}: {_plural(len(findings), 'certificate finding')}"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/digest.txt", context),
        to=recipients,
    )
    message.attach_alternative(render_to_string("emails/digest.html", context), "text/html")
    return message


def digest_lines_text(findings: list[Finding]) -> str:
    """The plain-text lines of a digest, one numbered block per finding."""
    lines = []
    for number, finding in enumerate(findings, start=1):
        lines.append(f"{number}. {finding.title}: {finding.name}")
        if finding.hostnames:
            lines.append(f"   Hostnames: {', '.join(finding.hostnames)}")
        if finding.expires_at:
            lines.append(f"   Expiry: {finding.expires_text} ({finding.when})")
        lines.append(f"   What to do: {finding.action}")
        lines.append(f"   {finding.url}")
        lines.append("")
    return "\n".join(lines)


def digest_rows_html(findings: list[Finding]) -> SafeString:
    """The HTML table rows of a digest; every value is escaped (html.escape, as Django's
    escape does, without its per-call lazy-string checks)."""
    rows = []
    for finding in findings:
        expiry = (
            f"{escape(finding.expires_text)}<br>{escape(finding.when)}"
            if finding.expires_at
            else ""
        )
        rows.append(
            "<tr>"
            f"<td><strong>{escape(finding.title)}</strong></td>"
            f'<td><a href="{escape(finding.url)}">{escape(finding.name)}</a></td>'
            f"<td>{escape(', '.join(finding.hostnames))}</td>"
            f"<td>{expiry}</td>"
            f"<td>{escape(finding.action)}</td>"
            "</tr>"
        )
    return mark_safe("\n".join(rows))  # noqa: S308 - built from escaped values only


def webhook_payload(institution: Institution, findings: list[Finding]) -> dict:
    """JSON for the webhook. `text` is a ready-made message for chat tools that show it."""
    listed = findings[:DIGEST_MAX_FINDINGS]
    lines = [f"certmgr: {_plural(len(findings), 'finding')} for {institution.name}"]
    lines += [
        f"- {finding.title}: {finding.name} ({', '.join(finding.hostnames[:3])}) {finding.url}"
        for finding in listed
    ]
    if len(findings) > len(listed):
        lines.append(f"... and {len(findings) - len(listed)} more")
    return {
        "institution": {"name": institution.name, "slug": institution.slug},
        "text": "\n".join(lines),
        "count": len(findings),
        "findings": [finding.as_json() for finding in listed],
    }


def webhook_address_refusal(url: str, *, resolve: bool) -> str:
    """Why certmgr will not POST to `url`, or "" when it may.

    A webhook is a URL a manager types, and the worker fetches it from inside the platform:
    pointed at a loopback, private, link-local or otherwise non-public address it would reach
    internal services (server-side request forgery). Refused unless
    CERTMGR_WEBHOOK_ALLOW_PRIVATE (tests, a chat server on the same network). With `resolve`,
    every address the host name resolves to is checked (at send time); without, only a
    literal address or "localhost" (when the form is saved: the name may not resolve there).
    """
    return _webhook_addresses(url, resolve=resolve)[0]


def _webhook_addresses(url: str, *, resolve: bool) -> tuple[str, list[str]]:
    """(why `url` is refused or "", the addresses checked: those to connect to)."""
    parsed = urlsplit(url)
    host = (parsed.hostname or "").rstrip(".").lower()
    if parsed.scheme not in ("http", "https") or not host:
        return "not an http(s) URL", []
    try:
        parsed.port  # noqa: B018 (it raises for a port out of range)
    except ValueError:
        return "the port is not a valid one", []
    allow_private = settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        return f"{host} is this machine", []
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return "", []
        try:
            found = socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)
        except OSError:
            return "", []  # the POST fails on its own, with "could not connect"
        addresses = list(
            dict.fromkeys(ipaddress.ip_address(entry[4][0].split("%")[0]) for entry in found)
        )
    internal = sorted(str(address) for address in addresses if not address.is_global)
    if internal and not allow_private:
        return f"{host} is an internal address ({', '.join(internal)}), refused", []
    return "", [str(address) for address in addresses]


def webhook_post(url: str, payload: dict) -> str:
    """POST `payload` as JSON, with WEBHOOK_ATTEMPTS tries; "" when delivered, else why not.

    A 4xx answer (other than 429) is final. The URL is not repeated in the error: chat tools
    put their secret in it. Internal addresses are refused (webhook_address_refusal), and the
    POST goes to the very address that was checked (a name answering differently the second
    time, DNS rebinding, changes nothing); redirects are not followed.
    """
    body = json.dumps(payload).encode()
    error = ""
    for attempt in range(WEBHOOK_ATTEMPTS):
        if attempt:
            time.sleep(WEBHOOK_BACKOFF[min(attempt, len(WEBHOOK_BACKOFF)) - 1])
        refusal, addresses = _webhook_addresses(url, resolve=True)
        if refusal:
            return refusal
        if not addresses:
            error = "could not connect"  # the name does not resolve
            continue
        try:
            status = _webhook_post_to_any(url, addresses, body)
        except NewConnectionError:
            error = "could not connect"
            continue
        except Urllib3TimeoutError:
            error = f"no answer within {WEBHOOK_TIMEOUT:g} s"
            continue
        except (SSLError, ProtocolError):
            error = "could not connect"
            continue
        except HTTPError as exception:
            return f"request failed ({exception.__class__.__name__})"
        if status < 300:
            return ""
        error = f"HTTP {status}"
        if status < 500 and status != 429:
            break
    return f"{error} after {_plural(attempt + 1, 'attempt')}"


def _webhook_post_to_any(url: str, addresses: list[str], body: bytes) -> int:
    """POST to the first of `addresses` that accepts the connection, in the resolver's order
    (an unreachable IPv6 address falls back to IPv4, as a plain connection would)."""
    for address in addresses[:-1]:
        try:
            return _webhook_post_to(url, address, body)
        except NewConnectionError:
            continue
    return _webhook_post_to(url, addresses[-1], body)


def _webhook_post_to(url: str, address: str, body: bytes) -> int:
    """POST `body` to `url` at `address` (the host's name still given as Host, and checked
    against its TLS certificate); returns the HTTP status."""
    parsed = urlsplit(url)
    host = (parsed.hostname or "").rstrip(".")
    headers = {
        "Host": parsed.netloc.rpartition("@")[2],
        "Content-Type": "application/json",
        "User-Agent": "certmgr",
    }
    if parsed.username is not None:
        credentials = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
        headers.update(make_headers(basic_auth=credentials))
    options = {"timeout": Timeout(connect=WEBHOOK_TIMEOUT, read=WEBHOOK_TIMEOUT), "retries": False}
    if parsed.scheme == "https":
        pool = HTTPSConnectionPool(
            address,
            parsed.port or 443,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = HTTPConnectionPool(address, parsed.port or 80, **options)
    target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    with pool:  # closed without reading the answer's body: only its status matters
        response = pool.urlopen(
            "POST",
            target,
            body=body,
            headers=headers,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
        )
        return response.status


# --- platform staff -----------------------------------------------------------------------


def staff_summary_send(*, now: datetime | None = None) -> int:
    """E-mail every active staff user with an address the state across institutions: current
    certificates (not replaced) per status and institution, and the sales channels needing
    action. Returns the number of recipients."""
    now = now or timezone.now()
    recipients = sorted(
        set(
            get_user_model()
            .objects.filter(is_staff=True, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )
    if not recipients:
        return 0
    context = staff_summary_context(now=now)
    message = EmailMultiAlternatives(
        subject=f"[certmgr] Daily summary: {context['expired']} expired, "
        f"{context['critical']} critical, {_plural(context['channels_count'], 'channel')} "
        "needing action",
        body=render_to_string("emails/staff_summary.txt", context),
        to=recipients,
    )
    message.attach_alternative(render_to_string("emails/staff_summary.html", context), "text/html")
    message.send()
    return len(recipients)


def staff_summary_context(*, now: datetime) -> dict:
    statuses = CertificateStatus.values
    counts = (
        Certificate.objects.filter(replaced_by__isnull=True)
        .order_by()
        .values("institution_id")
        .annotate(**{status: Count("pk", filter=status_q(status, now)) for status in statuses})
    )
    by_institution = {row["institution_id"]: row for row in counts}
    labels = dict(CertificateStatus.choices)
    rows = [
        {
            "institution": institution,
            "counts": [
                (labels[status], by_institution.get(institution.pk, {}).get(status, 0))
                for status in statuses
            ],
        }
        for institution in Institution.objects.order_by("name")
    ]
    channels = SalesChannel.objects.filter(
        Q(probe_status__in=PROBE_PROBLEMS)
        | Q(ssl_mode=SalesChannel.SslMode.MANAGED, renewal_failures__gte=RENEWAL_FAILURES_ALERT)
    ).select_related("institution")
    since = now - timedelta(days=1)
    webhook_failures = (
        Notification.objects.filter(created_at__gte=since)
        .exclude(webhook_error="")
        .values_list("institution__name", flat=True)
        .distinct()
    )
    return {
        "now": now,
        "statuses": [labels[status] for status in statuses],
        "rows": rows,
        "expired": sum(by_institution.get(i, {}).get("expired", 0) for i in by_institution),
        "critical": sum(by_institution.get(i, {}).get("critical", 0) for i in by_institution),
        "channels": [
            {
                "channel": channel,
                "url": _absolute(channel.get_absolute_url()),
                "problem": (
                    f"renewal failed {channel.renewal_failures} times in a row"
                    if channel.renewal_failing
                    else channel.get_probe_status_display()
                ),
            }
            for channel in channels.order_by("institution__name", "hostname")[:200]
        ],
        "channels_count": channels.count(),
        "findings_today": Notification.objects.filter(created_at__gte=since).count(),
        "webhook_failures": sorted(webhook_failures),
        "base_url": settings.CERTMGR_BASE_URL,
    }
