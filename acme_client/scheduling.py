"""When issuance is asked for: the SSL Management choice of *Managed*, and *Renew now*.

Both claim the channel (services.channel_issuance_claim, a conditional update) and queue the
issuance task once the transaction commits, so that a channel is never ordered twice. The
scheduled renewals (`renew_due`, Celery beat) are services.channels_renew_due.
"""

import logging

from django.db import transaction

from certificates.models import Certificate
from core.audit import audit_record, event_log
from core.models import AuditEvent
from saleschannels.models import SalesChannel
from saleschannels.services import channel_set_ssl_mode

from . import tasks
from .services import channel_issuance_claim

logger = logging.getLogger(__name__)


def channel_ssl_mode_choose(
    *,
    channel: SalesChannel,
    mode: str,
    certificate: Certificate | None = None,
    actor,
    acme_profile: str | None = None,
) -> SalesChannel:
    """Apply the SSL Management choice (saleschannels.services.channel_set_ssl_mode) and,
    when the channel has just become managed, queue its first issuance: the certificate it
    served so far stays deployed until the platform's own is in place.

    `acme_profile` (None: unchanged) is the profile its orders ask for from then on (the form
    checked that the CA lists it); a certificate already issued keeps its own until renewed.
    """
    was_managed = channel.ssl_mode == SalesChannel.SslMode.MANAGED
    channel_set_ssl_mode(channel=channel, mode=mode, certificate=certificate, actor=actor)
    if acme_profile is not None and acme_profile != channel.acme_profile:
        channel_acme_profile_set(channel=channel, profile=acme_profile, actor=actor)
    if mode == SalesChannel.SslMode.MANAGED and not was_managed:
        channel_renew_now(channel=channel, actor=None, due_only=True)
    return channel


def channel_acme_profile_set(*, channel: SalesChannel, profile: str, actor) -> None:
    """Record the channel's ACME profile ("" for ACME_PROFILE), audited with SSL management."""
    previous = channel.acme_profile
    with transaction.atomic():
        SalesChannel.objects.filter(pk=channel.pk).update(acme_profile=profile)
        channel.acme_profile = profile
        audit_record(
            institution=channel.institution,
            actor=actor,
            action=AuditEvent.Action.CHANNEL_SSL_MODE,
            target=channel,
            details={
                "mode": channel.ssl_mode,
                "acme_profile": profile,
                "previous": {"acme_profile": previous},
            },
        )
        event_log(
            logger,
            "channel_acme_profile_changed",
            "channel {channel_id} ({hostname}): ACME profile {shown_profile}"
            " (was {shown_previous})",
            shown={
                "hostname": channel.hostname,
                "shown_profile": profile or "the default",
                "shown_previous": previous or "the default",
            },
            channel_id=channel.pk,
            institution_id=channel.institution_id,
            acme_profile=profile,
        )


def channel_issuance_queue(*, channel: SalesChannel, due_only: bool = False) -> bool:
    """Claim a managed channel and queue its issuance once the transaction commits.

    Returns False when a worker already holds the channel (an issuance is in progress) or,
    with due_only, when the channel is not due (any more): a scheduler claimed it first and
    its certificate is already issued, so ordering again would get it a second one.
    """
    if channel.hostname_verified_at is None:
        return False
    claim = channel_issuance_claim(channel_id=channel.pk, due_only=due_only)
    if claim is None:
        return False
    transaction.on_commit(lambda: tasks.issue_certificate.delay(channel.pk, claim))
    return True


def channel_renew_now(*, channel: SalesChannel, actor, due_only: bool = False) -> bool:
    """Queue an issuance for a managed channel now, whatever its schedule and backoff.

    With due_only (a channel just switched to managed, hence due), only while it is still
    due: since the switch committed, a scheduler may have claimed the channel and even
    obtained its certificate, and ordering regardless would get it a second one.

    Returns False when an issuance is already in progress for it (or, with due_only, done).
    """
    with transaction.atomic():
        if not due_only:
            SalesChannel.objects.filter(pk=channel.pk).update(renewal_next_attempt_at=None)
        queued = channel_issuance_queue(channel=channel, due_only=due_only)
        if queued and actor is not None:
            audit_record(
                institution=channel.institution,
                actor=actor,
                action=AuditEvent.Action.CHANNEL_RENEW_NOW,
                target=channel,
            )
        event_log(
            logger,
            "channel_issuance_requested",
            "channel {channel_id} ({hostname}): issuance {state}",
            shown={
                "hostname": channel.hostname,
                "state": "queued" if queued else "already in progress",
            },
            channel_id=channel.pk,
            institution_id=channel.institution_id,
            queued=queued,
        )
    return queued
