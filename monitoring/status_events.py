"""Webhook events for channel status changes (README, "Onboarding a hostname": the lifecycle).

saleschannels.status.status_set() sends `channel_status_changed` once the transaction that
changed a channel's status has committed; `channel_status_changed_receive` (connected in
MonitoringConfig.ready) builds the event and queues `monitoring.tasks.channel_status_event`,
which POSTs it to the institution's webhook (monitoring/webhooks.py). The event says the status
as every page does: its label, and the typed reason's plain words and advice
(saleschannels/findings.py). Raw error text (`SalesChannel.renewal_last_error`, what a CA or a
server answered) is never part of it: that stays in the log and the admin.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from saleschannels.models import ChannelStatus, SalesChannel
from saleschannels.status import StatusShown, status_shown

from .digests import absolute_url

logger = logging.getLogger(__name__)

EVENT_STATUS_CHANGED = "channel.status_changed"


def status_label(status: str) -> str:
    """The label of a ChannelStatus value (the value itself for one no longer defined)."""
    try:
        return ChannelStatus(status).label
    except ValueError:
        return status


def _shown(*, hostname: str, status: str, reason: str, params: dict) -> StatusShown:
    # An unsaved channel carrying what the signal said: the words are those of the change,
    # whatever the row holds by the time the event is built.
    channel = SalesChannel(
        hostname=hostname, status=status, status_reason=reason, status_params=params or {}
    )
    return status_shown(channel)


def status_event_payload(
    *,
    channel_id: int,
    name: str,
    hostname: str,
    old: str,
    new: str,
    reason: str,
    params: dict,
    at: datetime,
    institution: dict | None = None,
) -> dict:
    """The JSON of a `channel.status_changed` event. `text` is a ready-made line for chat tools
    (as in the digest's webhook); `institution` is {"name", "slug"} when given."""
    shown = _shown(hostname=hostname, status=new, reason=reason, params=params)
    url = absolute_url(reverse("channel_detail", args=[channel_id]))
    old_label = status_label(old)
    text = f"certmgr: {name} ({hostname}): {old_label} → {shown.label}. {shown.words}"
    if shown.advice:
        text += f" {shown.advice}"
    payload = {
        "event": EVENT_STATUS_CHANGED,
        "channel": {"id": channel_id, "name": name, "hostname": hostname, "url": url},
        "old": {"status": old, "label": old_label},
        "new": {
            "status": shown.status,
            "label": shown.label,
            "reason": shown.reason,
            "words": shown.words,
            "advice": shown.advice,
        },
        "at": at.isoformat(),
        "text": f"{text} {url}",
    }
    if institution is not None:
        payload["institution"] = institution
    return payload


def channel_status_changed_receive(
    sender,
    *,
    channel_id: int,
    institution_id: int,
    hostname: str,
    old: str,
    new: str,
    reason: str = "",
    params: dict | None = None,
    **kwargs,
) -> None:
    """Receiver of saleschannels.status.channel_status_changed (sent on commit): queue the
    event for the institution's webhook, if it has one. Never raises: the change is committed
    already, and a broker that cannot take the event must not fail whoever changed it."""
    from .tasks import channel_status_event  # tasks -> delivery -> ...: imported when used

    try:
        row = (
            SalesChannel.objects.filter(pk=channel_id)
            .values_list(
                "name", "institution__webhook_url", "institution__name", "institution__slug"
            )
            .first()
        )
        if row is None:
            return  # deleted since
        name, webhook_url, institution_name, institution_slug = row
        if not webhook_url:
            return
        payload = status_event_payload(
            channel_id=channel_id,
            name=name,
            hostname=hostname,
            old=old,
            new=new,
            reason=reason,
            params=params or {},
            at=timezone.now(),
            institution={"name": institution_name, "slug": institution_slug},
        )
        channel_status_event.delay(institution_id, payload)
    except Exception:
        logger.exception(
            "could not queue the status event of channel %s (%s -> %s)",
            channel_id,
            old,
            new,
            extra={"event": "channel_status_event_not_queued", "channel_id": channel_id},
        )
