"""Expiry monitoring, step 2: tell each institution what was found, in one digest per run
(README, "Expiry monitoring").

`findings_deliver(now)` claims the findings not e-mailed yet with a conditional update
(emailed_at set to this run's claim time where still empty), so two runs never send the same
finding, and sends one digest per institution: e-mail to its notification addresses (its
managers' when it has none), then its webhook. A failed e-mail gives its claim back and is
tried again by the next runs for UNSENT_RETRY_WINDOW. A webhook gets WEBHOOK_ATTEMPTS tries
(webhooks.py); its failure is recorded and blocks neither the e-mail nor the other
institutions.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import (
    Exists,
    F,
    OuterRef,
)
from django.utils import timezone

from certificates.models import (
    Certificate,
)
from institutions.models import Institution, Membership

from .digests import DetailUrls, Finding, digest_email, finding_view, urgency, webhook_payload
from .findings import findings_collect
from .models import Notification
from .webhooks import webhook_post

logger = logging.getLogger(__name__)

# A digest whose e-mail failed is tried again by the following runs for this long.
UNSENT_RETRY_WINDOW = timedelta(days=3)
# Findings are claimed and read this many at a time (bounded queries and memory).
BATCH_SIZE = 1000


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
    urls = DetailUrls()
    results = []
    for institution in sorted(institutions.values(), key=lambda item: item.name):
        results.append(
            _digest_deliver(
                institution, by_institution[institution.pk], now=now, claim=claim, urls=urls
            )
        )
    return results


def _digest_deliver(
    institution: Institution, notifications: list, *, now: datetime, claim, urls: DetailUrls
) -> DigestResult:
    ids = [notification.pk for notification in notifications]
    result = DigestResult(institution=institution, findings=[])
    views: dict[int, Finding] = {}
    try:
        views = {
            notification.pk: finding_view(notification, now, urls) for notification in notifications
        }
        result.findings = sorted(views.values(), key=urgency)
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
    payload = webhook_payload(institution, sorted((views[pk] for pk in unposted), key=urgency))
    error = webhook_post(
        institution.webhook_url,
        payload,
        secrets=institution.webhook_signing_secrets(timezone.now()),
    )
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
