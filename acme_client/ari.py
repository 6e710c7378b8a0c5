"""ACME Renewal Information (ARI, RFC 9773: https://www.rfc-editor.org/rfc/rfc9773) of managed
certificates (README, "Managed certificates at scale").

- Right after an issuance the new certificate's RenewalInfo is asked for (section 4.3) and the
  renewal is planned at a random moment of the window it suggests (section 4.2); without ARI,
  by a random moment of the lifetime's window (certificates.renewal.renewal_due_at).
- Then it is asked again when the CA's Retry-After says (section 4.3), bounded to
  [ARI_MIN_INTERVAL, ARI_MAX_INTERVAL], ARI_DEFAULT_INTERVAL when the CA sends none: about
  twice a day per certificate, by the `ari_refresh` beat task, never by `renew_due`. Each ask
  is claimed first with a conditional update, so that any number of beats ask once.
- A window that ends before the planned renewal (an incident, a revocation) moves the renewal
  to a random moment of what is left of the new window, and is noted on the channel (an audit
  event, a log line, a line on its page). A window that starts after a renewal not yet due
  moves it into the window; a planned renewal inside the window stays where it is.
- A renewal order names the certificate it replaces (`replaces`, section 5) when the CA offers
  ARI and issued that certificate through the same directory.
"""

from __future__ import annotations

import logging
import random as random_module
from collections.abc import Callable
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from certificates.models import Certificate
from certificates.renewal import renewal_due_at
from core.audit import audit_record, event_log
from core.models import AuditEvent
from saleschannels.models import SalesChannel

from . import protocol
from .models import AcmeOrder

logger = logging.getLogger(__name__)

ARI_DEFAULT_INTERVAL = timedelta(hours=12)
ARI_MIN_INTERVAL = timedelta(hours=1)
ARI_MAX_INTERVAL = timedelta(hours=24)
# Channels asked per `ari_refresh` run; the others wait for the next run.
ARI_BATCH = 500
# Time for one ask (the directory, or one RenewalInfo), retries included.
ARI_DEADLINE_SECONDS = 30.0

_ASK_FAILED = (protocol.AcmeProblem, protocol.AcmeFailure, requests.RequestException, ValueError)


def ari_interval(retry_after: float | None) -> timedelta:
    """How long to wait before asking again: the CA's Retry-After (RFC 9773 section 4.3)
    bounded to [ARI_MIN_INTERVAL, ARI_MAX_INTERVAL], ARI_DEFAULT_INTERVAL without one."""
    if retry_after is None:
        return ARI_DEFAULT_INTERVAL
    return min(max(timedelta(seconds=retry_after), ARI_MIN_INTERVAL), ARI_MAX_INTERVAL)


def _issued_here(certificate: Certificate) -> bool:
    """Whether the certificate came from an order to the directory in use now."""
    return AcmeOrder.objects.filter(
        certificate=certificate, directory_url=settings.ACME_DIRECTORY_URL
    ).exists()


def replaces_for(channel: SalesChannel, acme) -> str:
    """The ARI identifier a renewal order of `channel` carries as `replaces` (RFC 9773
    section 5), or "": only for a managed certificate this CA issued, when it offers ARI."""
    previous = channel.active_certificate
    if (
        previous is None
        or previous.source != Certificate.Source.MANAGED
        or not previous.certificate_pem
        or not protocol.ari_offered(acme)
        or not _issued_here(previous)
    ):
        return ""
    try:
        return protocol.ari_certificate_id(previous.certificate_pem) or ""
    except ValueError:  # an unreadable PEM: order without naming it
        return ""


def issuance_plan(
    acme,
    *,
    certificate_pem: str,
    not_before: datetime,
    not_after: datetime,
    now: datetime,
    random: Callable[[], float] = random_module.random,
) -> dict:
    """The channel fields after an issuance: when to renew the new certificate, and what ARI
    said of it (asked at once, RFC 9773 section 4.3). An ARI that fails changes nothing but
    the plan (the lifetime rule: a random moment of its window, `random` drawing it) and is
    asked again after ARI_MIN_INTERVAL."""
    plan = {
        "renewal_due_at": renewal_due_at(not_before=not_before, not_after=not_after, random=random),
        "ari_checked_at": None,
        "ari_next_check_at": now + ARI_DEFAULT_INTERVAL,
        "ari_window_start": None,
        "ari_window_end": None,
        "ari_window_moved_at": None,
    }
    try:
        window = protocol.renewal_info(
            acme,
            certificate_pem=certificate_pem,
            deadline=protocol.deadline_in(ARI_DEADLINE_SECONDS),
        )
    except _ASK_FAILED as error:
        logger.warning("ARI of a new certificate not available: %s", error)
        plan["ari_next_check_at"] = now + ARI_MIN_INTERVAL
        return plan
    if window is None:
        return plan
    plan.update(
        renewal_due_at=renewal_due_at(
            not_before=not_before,
            not_after=not_after,
            suggested=window.random_time(not_before=now),
            random=random,
        ),
        ari_checked_at=now,
        ari_next_check_at=now + ari_interval(window.retry_after),
        ari_window_start=window.start,
        ari_window_end=window.end,
    )
    return plan


def channels_ari_due(now: datetime):
    """Managed channels whose certificate ARI should be asked about again: a managed, unexpired
    certificate from the directory in use, its next ask due (or never asked)."""
    issued_here = AcmeOrder.objects.filter(
        certificate=OuterRef("active_certificate"), directory_url=settings.ACME_DIRECTORY_URL
    )
    return (
        SalesChannel.objects.filter(
            Q(ari_next_check_at__isnull=True) | Q(ari_next_check_at__lte=now),
            Exists(issued_here),
            ssl_mode=SalesChannel.SslMode.MANAGED,
            active_certificate__source=Certificate.Source.MANAGED,
            # RFC 9773 section 4.3: never after the certificate has expired.
            active_certificate__not_after__gt=now,
        )
        .select_related("institution", "active_certificate")
        .order_by(F("ari_next_check_at").asc(nulls_first=True), "pk")
    )


def _ask_claim(channel: SalesChannel, now: datetime) -> bool:
    """Take this ask (a conditional update on the next-ask time); False when another run has.
    Until it is answered, the next ask is ARI_MIN_INTERVAL away (a crashed run's lease)."""
    return (
        SalesChannel.objects.filter(
            pk=channel.pk, ari_next_check_at=channel.ari_next_check_at
        ).update(ari_next_check_at=now + ARI_MIN_INTERVAL)
        == 1
    )


def channels_ari_refresh(*, now: datetime | None = None, limit: int = ARI_BATCH) -> int:
    """Ask ARI about every channel that is due for it (`channels_ari_due`); returns how many
    were asked. Run by the `ari_refresh` beat task."""
    now = now or timezone.now()
    due = list(channels_ari_due(now)[:limit])
    if not due:
        return 0
    try:
        acme = protocol.directory_client(
            directory_url=settings.ACME_DIRECTORY_URL,
            ca_bundle=settings.ACME_CA_BUNDLE or True,
            deadline=protocol.deadline_in(ARI_DEADLINE_SECONDS),
        )
    except _ASK_FAILED as error:
        logger.warning("ari_refresh: the CA's directory could not be read: %s", error)
        return 0
    if not protocol.ari_offered(acme):
        # No ARI at this CA (yet): look again later, without a request per certificate.
        SalesChannel.objects.filter(pk__in=[channel.pk for channel in due]).update(
            ari_next_check_at=now + ARI_DEFAULT_INTERVAL
        )
        return 0
    asked = 0
    for channel in due:
        if not _ask_claim(channel, now):
            continue
        asked += 1
        try:
            window = protocol.renewal_info(
                acme,
                certificate_pem=channel.active_certificate.certificate_pem,
                deadline=protocol.deadline_in(ARI_DEADLINE_SECONDS),
            )
        except _ASK_FAILED as error:
            retry_after = getattr(error, "retry_after", None)
            logger.warning("channel %s: ARI not available: %s", channel.pk, error)
            wait = ari_interval(retry_after) if retry_after is not None else ARI_MIN_INTERVAL
            SalesChannel.objects.filter(pk=channel.pk).update(ari_next_check_at=now + wait)
            continue
        if window is None:
            continue
        window_apply(channel, window, now=now)
    if asked:
        logger.info(
            "ari_refresh: %s certificate(s) asked",
            asked,
            extra={"event": "acme_ari_refreshed", "asked": asked},
        )
    return asked


def window_apply(channel: SalesChannel, window: protocol.RenewalWindow, *, now: datetime) -> bool:
    """Store what ARI said and re-plan the renewal (module docstring). Returns whether the
    window moved earlier than the planned renewal. Written only while the channel still has
    the certificate asked about and the plan read (an issuance may have replaced both)."""
    planned = channel.renewal_due_at
    fields = {
        "ari_checked_at": now,
        "ari_next_check_at": now + ari_interval(window.retry_after),
        "ari_window_start": window.start,
        "ari_window_end": window.end,
    }
    moved_earlier = planned is not None and planned > now and window.end < planned
    if planned is None or moved_earlier or (planned > now and planned < window.start):
        fields["renewal_due_at"] = window.random_time(not_before=now)
    if moved_earlier:
        fields["ari_window_moved_at"] = now
    with transaction.atomic():
        updated = SalesChannel.objects.filter(
            pk=channel.pk,
            active_certificate_id=channel.active_certificate_id,
            renewal_due_at=planned,
        ).update(**fields)
        if updated != 1 or not moved_earlier:
            return False
        details = {
            "certificate": channel.active_certificate_id,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "planned": planned.isoformat(),
            "renewal_due_at": fields["renewal_due_at"].isoformat(),
        }
        audit_record(
            institution=channel.institution,
            actor=None,
            action=AuditEvent.Action.CHANNEL_RENEWAL_WINDOW_MOVED,
            target=channel,
            details=details,
        )
        event_log(
            logger,
            "acme_ari_window_moved",
            "channel {channel_id} ({hostname}): the CA moved the renewal window earlier (ARI), "
            "to {window_start} - {window_end}; renewal moved from {planned} to {renewal_due_at}",
            hostname=channel.hostname,
            channel_id=channel.pk,
            institution_id=channel.institution_id,
            **details,
        )
    return True
