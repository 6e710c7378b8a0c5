"""Expiry monitoring: find what needs an operator, record each finding once, tell each
institution in one digest per run (e-mail, and an optional webhook), and give platform staff a
daily summary.

A run (`expiry_check`, Celery beat hourly) has two steps.

1. `findings_collect(now)` records the new findings as Notification rows.

   - Certificates: those whose `notify_at` has come, an index range, so a run reads what is
     due and not the whole table. For each, thresholds.py gives the *newest* threshold crossed
     (a certificate uploaded with 5 days left is reported once, as "7d"; thresholds skipped
     over are not recorded) and the next one, which becomes its notify_at (None after the
     last). Not reported: certificates that a newer one `replaces` (renewed), and expiries
     older than EXPIRED_REPORT_WINDOW (history, not news). Unverified certificates (expiry
     typed by hand) are reported like the others.
   - Sales channels (each query follows an index of the few channels concerned): a managed
     renewal failing twice or more in a row (once per certificate it is trying to replace),
     a probe problem (once per status and served certificate), and a wrongly served
     certificate crossing a day threshold (a channel serving its active certificate needs
     nothing more: that certificate is reported itself).

   The unique keys of Notification make every finding once-only: rows are written with
   bulk_create(ignore_conflicts=True), so reruns, restarts and two runs at once record it once.

2. `findings_deliver(now)` claims the findings not e-mailed yet with a conditional update
   (emailed_at set to this run's claim time where still empty), so two runs never send the
   same finding, and sends one digest per institution: e-mail to its notification addresses
   (its managers' when it has none), then its webhook. A failed e-mail gives its claim back and
   is tried again by the next runs for UNSENT_RETRY_WINDOW. A webhook gets WEBHOOK_ATTEMPTS
   tries; its failure is recorded and blocks neither the e-mail nor the other institutions.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from acme_client.renewal import renewal_due_at
from institutions.models import Institution, Membership
from saleschannels.models import (
    PROBE_PROBLEMS,
    RENEWAL_FAILURES_ALERT,
    ProbeStatus,
    SalesChannel,
)

from . import thresholds as rules
from .models import Certificate, CertificateStatus, Notification, status_q

logger = logging.getLogger(__name__)

# An expiry further back than this is history: it is not reported (e.g. on the first run).
EXPIRED_REPORT_WINDOW = timedelta(days=7)
# A digest whose e-mail failed is tried again by the following runs for this long.
UNSENT_RETRY_WINDOW = timedelta(days=3)
# Due certificates are handled this many at a time (bounded queries and memory).
BATCH_SIZE = 1000
# A digest lists this many findings, the most urgent first, and then how many more there are
# (all are recorded and marked sent): a list of thousands helps nobody.
DIGEST_MAX_FINDINGS = 100
WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT = 5.0
# Seconds to wait before the 2nd and the 3rd attempt.
WEBHOOK_BACKOFF = (1.0, 3.0)

RENEWAL_FAILING = "renewal-failing"
_CERTIFICATE_FIELDS = (
    "pk",
    "institution_id",
    "name",
    "kind",
    "source",
    "domains",
    "expires_at",
    "expiry_source",
    "not_before",
    "notify_at",
)


# --- thresholds under the current settings ------------------------------------------------


def certificate_thresholds(certificate: Certificate) -> list[rules.Threshold]:
    """The certificate's expiry thresholds (thresholds.py) under the current settings.

    For a managed certificate, those at or before its planned renewal are dropped: the
    platform renews it then, and a failing renewal is reported as its own finding.
    """
    renews_at = None
    if certificate.source == Certificate.Source.MANAGED and certificate.not_before:
        renews_at = renewal_due_at(
            not_before=certificate.not_before, not_after=certificate.expires_at
        )
    return rules.certificate_thresholds(
        not_before=certificate.not_before,
        not_after=certificate.expires_at,
        days=settings.CERTMGR_NOTIFY_DAYS,
        short_lived_days=settings.CERTMGR_SHORT_LIVED_DAYS,
        renews_at=renews_at,
    )


def certificate_notify_at(certificate: Certificate) -> datetime | None:
    """When check_expiry should first look at a new certificate: its first threshold (which
    may be past already: a certificate uploaded with 5 days left is due at once)."""
    thresholds = certificate_thresholds(certificate)
    return thresholds[0].crossed_at if thresholds else None


# --- step 1: findings ---------------------------------------------------------------------


def findings_collect(*, now: datetime) -> int:
    """Record every new finding at `now` (see the module docstring); returns how many."""
    return _certificate_findings_record(now) + _channel_findings_record(now)


def _certificate_findings_record(now: datetime) -> int:
    # Due certificates in notify_at order, a batch at a time: each batch moves its
    # certificates' notify_at past `now` (or clears it), so the next batch starts after them.
    # The ordered LIMIT keeps PostgreSQL on a plain index scan, which also skips the index
    # entries of rows that earlier runs moved.
    due = Certificate.objects.filter(notify_at__lte=now).order_by("notify_at", "pk")
    recorded = 0
    seen: set[int] = set()
    while ids := list(due.values_list("pk", flat=True)[:BATCH_SIZE]):
        if seen.issuperset(ids):  # cannot happen unless a move failed: never loop forever
            logger.error("check_expiry: certificates %s stay due, stopping", ids[:10])
            break
        seen.update(ids)
        recorded += _certificate_batch_record(ids, now)
    return recorded


def _certificate_batch_record(ids: list[int], now: datetime) -> int:
    certificates = (
        Certificate.objects.filter(pk__in=ids)
        .only(*_CERTIFICATE_FIELDS)
        .annotate(replaced=Exists(Certificate.objects.filter(replaces=OuterRef("pk"))))
    )
    recorded = set(
        Notification.objects.filter(certificate_id__in=ids).values_list(
            "certificate_id", "threshold"
        )
    )
    findings = []
    # The next notify_at of each certificate, grouped by its distance before expiry: every
    # certificate whose next threshold is "14d" moves to expires_at - 14 days, so one UPDATE
    # per distinct distance (a handful) moves them all.
    moves: dict[timedelta | None, list[int]] = defaultdict(list)
    for certificate in certificates:
        thresholds = certificate_thresholds(certificate)
        upcoming = rules.threshold_next(thresholds, now)
        latest = rules.threshold_latest_crossed(thresholds, now)
        if (
            latest is not None
            and not certificate.replaced
            and certificate.expires_at > now - EXPIRED_REPORT_WINDOW
            and (certificate.pk, latest.name) not in recorded
        ):
            findings.append(_certificate_finding(certificate, latest))
        before_expiry = (
            certificate.expires_at - upcoming.crossed_at
            if upcoming and not certificate.replaced
            else None
        )
        moves[before_expiry].append(certificate.pk)
    # Unconditional: should a renewal clear notify_at meanwhile, the next look at the old
    # certificate sees it replaced and clears it again, sending nothing.
    with transaction.atomic():
        Notification.objects.bulk_create(findings, ignore_conflicts=True, batch_size=500)
        for before_expiry, moved in moves.items():
            Certificate.objects.filter(pk__in=moved).update(
                notify_at=None if before_expiry is None else F("expires_at") - before_expiry
            )
    return len(findings)


def _certificate_finding(certificate: Certificate, threshold: rules.Threshold) -> Notification:
    return Notification(
        institution_id=certificate.institution_id,
        kind=Notification.Kind.CERTIFICATE_EXPIRY,
        certificate_id=certificate.pk,
        threshold=threshold.name,
        expires_at=certificate.expires_at,
        details={
            "name": certificate.name,
            "domains": list(certificate.domains or [])[:20],
            "kind": certificate.kind,
            "source": certificate.source,
            "unverified": certificate.is_unverified,
            "crossed_at": threshold.crossed_at.isoformat(),
        },
    )


def _channel_findings_record(now: datetime) -> int:
    fields = (
        "pk",
        "institution_id",
        "name",
        "hostname",
        "active_certificate",
        "renewal_failures",
        "renewal_last_error",
        "renewal_next_attempt_at",
        "probe_status",
        "probe_fingerprint",
        "probe_expires_at",
        "probe_error",
        "probe_checked_at",
    )
    failing = SalesChannel.objects.filter(
        ssl_mode=SalesChannel.SslMode.MANAGED, renewal_failures__gte=RENEWAL_FAILURES_ALERT
    ).select_related("active_certificate")
    findings = [
        _renewal_finding(channel)
        for channel in failing.only(*fields, "active_certificate__expires_at")
    ]
    for channel in SalesChannel.objects.filter(probe_status__in=PROBE_PROBLEMS).only(*fields):
        findings.extend(_probe_findings(channel, now))
    new = []
    for start in range(0, len(findings), BATCH_SIZE):
        batch = findings[start : start + BATCH_SIZE]
        recorded = set(
            Notification.objects.filter(
                channel_id__in={finding.channel_id for finding in batch}
            ).values_list("channel_id", "threshold", "episode")
        )
        new.extend(
            finding
            for finding in batch
            if (finding.channel_id, finding.threshold, finding.episode) not in recorded
        )
    Notification.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    return len(new)


def _renewal_finding(channel: SalesChannel) -> Notification:
    # One streak of failures is about replacing one certificate: a renewal that succeeds
    # switches the channel to a new one, so the next streak is a new episode.
    active = channel.active_certificate
    return Notification(
        institution_id=channel.institution_id,
        kind=Notification.Kind.RENEWAL_FAILING,
        channel_id=channel.pk,
        threshold=RENEWAL_FAILING,
        episode=f"certificate-{channel.active_certificate_id or 'none'}",
        expires_at=active.expires_at if active else None,
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


def _probe_findings(channel: SalesChannel, now: datetime) -> list[Notification]:
    # Once per status and served certificate: the same wrong certificate seen hourly is one
    # finding, another one served (or the channel's certificate changing) is a new one.
    served = channel.probe_fingerprint.replace(":", "")[:16] or "none"
    episode = f"{channel.active_certificate_id or 'none'}/{served}"
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
    """One run: record the new findings, then send what is not sent yet."""
    now = now or timezone.now()
    recorded = findings_collect(now=now)
    return ExpiryCheckReport(recorded=recorded, digests=findings_deliver(now=now))


def findings_deliver(*, now: datetime) -> list[DigestResult]:
    """Claim the findings not e-mailed yet and send one digest per institution."""
    pending = Notification.objects.filter(
        emailed_at__isnull=True, created_at__gte=now - UNSENT_RETRY_WINDOW
    ).order_by()
    ids = list(pending.values_list("pk", flat=True))
    if not ids:
        return []
    # The claim: emailed_at set to this run's own instant where it is still empty; what holds
    # that instant afterwards is ours, and no other run sends it.
    claim = timezone.now()
    claimed: list[Notification] = []
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        Notification.objects.filter(pk__in=chunk, emailed_at__isnull=True).update(emailed_at=claim)
        claimed.extend(Notification.objects.filter(pk__in=chunk, emailed_at=claim).order_by("pk"))
    claimed = _drop_renewed(claimed)
    by_institution: dict[int, list[Notification]] = defaultdict(list)
    for notification in claimed:
        by_institution[notification.institution_id].append(notification)
    institutions = Institution.objects.in_bulk(list(by_institution))
    results = []
    for institution in sorted(institutions.values(), key=lambda item: item.name):
        results.append(
            _digest_deliver(institution, by_institution[institution.pk], now=now, claim=claim)
        )
    return results


def _drop_renewed(notifications: list[Notification]) -> list[Notification]:
    """Certificate findings whose certificate was renewed before the digest went out are left
    out (their claim stays: there is nothing to send about them any more)."""
    certificate_ids = {n.certificate_id for n in notifications if n.certificate_id}
    renewed = set(
        Certificate.objects.filter(replaces_id__in=certificate_ids).values_list(
            "replaces_id", flat=True
        )
    )
    return [n for n in notifications if n.certificate_id not in renewed]


def _digest_deliver(
    institution: Institution, notifications: list[Notification], *, now: datetime, claim
) -> DigestResult:
    ids = [notification.pk for notification in notifications]
    result = DigestResult(institution=institution, findings=[])
    views: dict[int, Finding] = {}
    try:
        views = {notification.pk: finding_view(notification, now) for notification in notifications}
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
    return result


def _webhook_deliver(
    institution: Institution,
    notifications: list[Notification],
    views: dict[int, Finding],
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


def _detail_url(view_name: str, pk: int) -> str:
    """The absolute URL of a detail page; reverse() runs once per page kind, not per
    finding (a first run can report tens of thousands)."""
    return _detail_url_pattern(view_name, settings.CERTMGR_BASE_URL).replace("999999999", str(pk))


@functools.lru_cache(maxsize=8)
def _detail_url_pattern(view_name: str, base_url: str) -> str:
    return base_url.rstrip("/") + reverse(view_name, args=[999999999])


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


def finding_view(notification: Notification, now: datetime) -> Finding:
    """What a recorded finding says to an operator: title, what to do, link."""
    details = notification.details or {}
    days_left, when = _when(notification.expires_at, now)
    threshold = notification.threshold
    if notification.kind == Notification.Kind.CERTIFICATE_EXPIRY:
        url = _detail_url("certificate_detail", notification.certificate_id)
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
            name=details.get("name", ""),
            hostnames=list(details.get("domains", [])),
            expires_at=notification.expires_at,
            days_left=days_left,
            when=when,
            action=_certificate_action(details, expired=expired),
            url=url,
        )
    url = _detail_url("channel_detail", notification.channel_id)
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


def _certificate_action(details: dict, *, expired: bool) -> str:
    if details.get("source") == Certificate.Source.MANAGED:
        return (
            "The platform renews this certificate itself and is late: open the sales channel "
            "that uses it, check its renewal status and use Renew now."
        )
    if details.get("kind", "").startswith("apple_"):
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
    """The digest e-mail of one run for one institution, plain text and HTML."""
    context = {
        "institution": institution,
        "count": len(findings),
        "findings": findings[:DIGEST_MAX_FINDINGS],
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


def webhook_post(url: str, payload: dict) -> str:
    """POST `payload` as JSON, with WEBHOOK_ATTEMPTS tries; "" when delivered, else why not.

    A 4xx answer (other than 429) is final. The URL is not repeated in the error: chat tools
    put their secret in it.
    """
    error = ""
    for attempt in range(WEBHOOK_ATTEMPTS):
        if attempt:
            time.sleep(WEBHOOK_BACKOFF[min(attempt, len(WEBHOOK_BACKOFF)) - 1])
        try:
            response = requests.post(
                url,
                json=payload,
                timeout=WEBHOOK_TIMEOUT,
                allow_redirects=False,
                headers={"User-Agent": "certmgr"},
            )
        except requests.Timeout:
            error = f"no answer within {WEBHOOK_TIMEOUT:g} s"
            continue
        except requests.ConnectionError:
            error = "could not connect"
            continue
        except requests.RequestException as exception:
            return f"request failed ({exception.__class__.__name__})"
        if response.status_code < 300:
            return ""
        error = f"HTTP {response.status_code}"
        if response.status_code < 500 and response.status_code != 429:
            break
    return f"{error} after {_plural(attempt + 1, 'attempt')}"


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
