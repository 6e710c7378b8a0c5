"""Celery tasks of expiry monitoring: thin wrappers that take ids and call one service each.

Celery beat runs check_expiry hourly and staff_summary daily (CELERY_BEAT_SCHEDULE in
settings).
"""

import logging

from celery import shared_task
from django.utils import timezone

from .delivery import findings_deliver, institutions_with_unsent
from .findings import findings_collect
from .staff_summary import staff_summary_send

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
