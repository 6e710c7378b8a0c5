"""Celery tasks of expiry monitoring: thin wrappers that take ids and call one service each.

Celery beat runs check_expiry hourly, probe_channels every few hours and staff_summary daily
(CELERY_BEAT_SCHEDULE in settings); probe_channel is queued after each deployment.
"""

import logging

from celery import shared_task
from django.utils import timezone

from . import notifications

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def check_expiry() -> int:
    """Beat: record new expiry and channel findings, then queue one send_digest per
    institution with findings to send, so that a slow mail server or a failing webhook of
    one institution (retries, timeouts) delays no other.

    Safe to run twice (each finding is recorded and sent once); returns how many were new.
    """
    now = timezone.now()
    recorded = notifications.findings_collect(now=now)
    for institution_id in notifications.institutions_with_unsent(now=now):
        try:
            send_digest.delay(institution_id)
        except Exception:  # the findings stay unsent: the next run queues them again
            logger.exception("could not queue the digest of institution %s", institution_id)
    return recorded


@shared_task(acks_late=True)
def send_digest(institution_id: int) -> int:
    """Send one institution its digest of the findings not sent yet; returns how many."""
    digests = notifications.findings_deliver(now=timezone.now(), institution_id=institution_id)
    return sum(len(digest.findings) for digest in digests)


@shared_task(acks_late=True)
def staff_summary() -> int:
    """Beat, daily: e-mail platform staff the state across institutions."""
    return notifications.staff_summary_send()


@shared_task(acks_late=True)
def probe_channels() -> dict[str, int]:
    """Beat: check what the TLS edge serves for every channel using SSL."""
    from saleschannels.probe import channels_probe

    return channels_probe()


@shared_task(acks_late=True)
def probe_channel(channel_id: int) -> str | None:
    """Check one channel right after its certificate was deployed (None: channel gone)."""
    from saleschannels.models import SalesChannel
    from saleschannels.probe import channel_probe

    channel = SalesChannel.objects.select_related("active_certificate").filter(pk=channel_id)
    channel = channel.first()
    return channel_probe(channel).value if channel else None
