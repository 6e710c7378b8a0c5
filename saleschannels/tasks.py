"""Celery tasks of the sales channels: thin wrappers that take ids and call one service each.

Celery beat runs probe_channels every few hours (CELERY_BEAT_SCHEDULE in settings);
probe_channel is queued after each deployment (services.probe_after_deploy).
"""

from celery import shared_task

from .models import SalesChannel
from .probe import channel_probe, channels_probe
from .status import statuses_refresh as _statuses_refresh


@shared_task(acks_late=True)
def probe_channels() -> dict[str, int]:
    """Beat: check what the TLS edge serves for every channel using SSL."""
    return channels_probe()


@shared_task(acks_late=True)
def probe_channel(channel_id: int) -> str | None:
    """Check one channel right after its certificate was deployed (None: channel gone)."""
    channel = SalesChannel.objects.select_related("active_certificate").filter(pk=channel_id)
    channel = channel.first()
    return channel_probe(channel).value if channel else None


@shared_task(acks_late=True)
def statuses_refresh() -> int:
    """Beat: move channels to the status time gave them (renewal due, expired)."""
    return _statuses_refresh()
