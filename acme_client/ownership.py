"""What follows a proof of ownership or a check on demand: the issuance it unblocks.

Verification itself is onboarding/services.py; this module, above it, queues the first
order of a managed channel as soon as its hostname is verified (*Verify now*, and the beat
task that re-checks unverified hostnames on a growing interval), and after *Check now* finds
that a waiting channel's checks pass.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from onboarding.services import channel_verify, channels_verification_due
from saleschannels.findings import Finding
from saleschannels.models import SalesChannel

# The module, not its function: scheduling imports the tasks, which import this module.
from . import scheduling
from .preflight import WAITING, checks_run, preflight_blocker

logger = logging.getLogger(__name__)


def channel_verify_now(channel: SalesChannel, *, now: datetime | None = None) -> list[Finding]:
    """Look for the proof now; a managed channel that is verified by it is queued at once."""
    findings = channel_verify(channel, now=now)
    if (
        channel.hostname_verified_at is not None
        and channel.ssl_mode == SalesChannel.SslMode.MANAGED
    ):
        scheduling.channel_issuance_queue(channel=channel, due_only=True)
    return findings


def channel_check_now(channel: SalesChannel) -> list[Finding]:
    """Run the pre-flight checks now; a channel waiting on them whose checks pass is queued."""
    waiting = channel.status in WAITING.values()
    findings = checks_run(channel)
    if waiting and preflight_blocker(findings) is None:
        scheduling.channel_issuance_queue(channel=channel, due_only=True)
    return findings


def channels_verify_due(now: datetime | None = None) -> int:
    """Beat: check every unverified hostname whose next check is due; returns how many."""
    now = now or timezone.now()
    checked = 0
    due = channels_verification_due(now).select_related("institution", "active_certificate")
    for channel in due.iterator(chunk_size=100):
        channel_verify_now(channel, now=now)
        checked += 1
    if checked:
        logger.info(
            "verify_due: %s hostname(s) checked",
            checked,
            extra={"event": "verification_checked", "checked": checked},
        )
    return checked
