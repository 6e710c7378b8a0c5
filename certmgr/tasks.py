"""Celery tasks of expiry monitoring: thin wrappers that take ids and call one service each.

Celery beat runs check_expiry hourly, probe_channels every few hours and staff_summary daily
(CELERY_BEAT_SCHEDULE in settings); probe_channel is queued after each deployment.
"""

from celery import shared_task

from . import notifications


@shared_task(acks_late=True)
def check_expiry() -> int:
    """Beat: record new expiry and channel findings and send each institution its digest.

    Safe to run twice (each finding is recorded and sent once); returns how many were new.
    """
    return notifications.expiry_check().recorded


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
