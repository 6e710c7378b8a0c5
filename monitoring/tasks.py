"""Celery tasks of expiry monitoring: thin wrappers that take ids and call one service each.

Celery beat runs check_expiry hourly and staff_summary daily (CELERY_BEAT_SCHEDULE in
settings); channel_status_event is queued by monitoring/status_events.py on each change of a
channel's status.
"""

import logging

from celery import shared_task
from django.utils import timezone

from institutions.models import Institution

from .delivery import findings_deliver, institutions_with_unsent
from .findings import findings_collect
from .staff_summary import staff_summary_send
from .webhooks import webhook_post

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def check_expiry() -> int:
    """Beat: record new expiry and channel findings, then queue one send_digest per
    institution with findings to send, so that a slow mail server or a failing webhook of
    one institution (retries, timeouts) delays no other.

    Safe to run twice (each finding is recorded and sent once); returns how many were new.
    """
    now = timezone.now()
    recorded = findings_collect(now=now)
    for institution_id in institutions_with_unsent(now=now):
        try:
            send_digest.delay(institution_id)
        except Exception:  # the findings stay unsent: the next run queues them again
            logger.exception("could not queue the digest of institution %s", institution_id)
    return recorded


@shared_task(acks_late=True)
def send_digest(institution_id: int) -> int:
    """Send one institution its digest of the findings not sent yet; returns how many."""
    digests = findings_deliver(now=timezone.now(), institution_id=institution_id)
    return sum(len(digest.findings) for digest in digests)


@shared_task(acks_late=True)
def staff_summary() -> int:
    """Beat, daily: e-mail platform staff the state across institutions."""
    return staff_summary_send()


@shared_task(acks_late=True)
def channel_status_event(institution_id: int, payload: dict) -> str:
    """POST a channel's status change (monitoring/status_events.py builds `payload`) to the
    institution's webhook; returns "delivered", "" when it has none, or why it failed.

    webhook_post makes its WEBHOOK_ATTEMPTS tries; a failure after those is logged and the
    event dropped (no Celery retry: a dead webhook must not pile up a retry per change, and
    the digest and the channel's page still say the status)."""
    institution = Institution.objects.filter(pk=institution_id).first()
    if institution is None or not institution.webhook_url:
        return ""
    channel = payload.get("channel", {})
    error = webhook_post(
        institution.webhook_url,
        payload,
        secrets=institution.webhook_signing_secrets(timezone.now()),
    )
    if error:
        # The URL is not logged: chat tools put their secret in it.
        logger.warning(
            "status event of channel %s for institution %s not delivered: %s",
            channel.get("id"),
            institution_id,
            error,
            extra={
                "event": "channel_status_event_failed",
                "institution_id": institution_id,
                "channel_id": channel.get("id"),
                "status": payload.get("new", {}).get("status"),
                "error": error,
            },
        )
        return error
    logger.info(
        "status event of channel %s delivered to institution %s",
        channel.get("id"),
        institution_id,
        extra={
            "event": "channel_status_event_delivered",
            "institution_id": institution_id,
            "channel_id": channel.get("id"),
            "status": payload.get("new", {}).get("status"),
        },
    )
    return "delivered"
