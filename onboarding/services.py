"""Proof of ownership of a channel's hostname (README, "Onboarding a hostname").

A channel's hostname is verified by the first proof found: the TXT record
``_certmgr-challenge.<hostname>`` holding the channel's token, or the token answered at
``http://<hostname>/.well-known/certmgr-challenge/<token>`` (certmgr answers it itself once
the name points at the edge, onboarding/views.py), or staff approval in the admin. Until then
the checks back off: CERTMGR_VERIFY_INTERVAL, doubling up to a day between two checks.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from saleschannels.findings import Check, Finding, Reason
from saleschannels.models import ChannelStatus, SalesChannel, VerificationMethod
from saleschannels.services import channel_hostname_verified_mark
from saleschannels.status import status_set

from .checks_http import http_token_verify
from .ownership import txt_verify
from .resolving import resolver

logger = logging.getLogger(__name__)

MAX_INTERVAL = timedelta(days=1)

# The channels whose hostname must be proved: those that want a managed certificate or
# serve an Apple Pay file (an uploaded certificate needs no proof: its key proves possession
# of a certificate, which the page says is not a proof of the name).
NEEDS_PROOF = Q(ssl_mode=SalesChannel.SslMode.MANAGED) | Q(apple_pay_enabled=True)


def verification_interval(attempts: int) -> timedelta:
    """How long after the `attempts`-th failed check the next one runs."""
    first = timedelta(seconds=settings.CERTMGR_VERIFY_INTERVAL)
    return min(first * (2 ** max(attempts - 1, 0)), MAX_INTERVAL)


def checks_merge(channel: SalesChannel, findings: list[Finding]) -> list[dict]:
    """The channel's stored findings with those of the same checks replaced by `findings`."""
    replaced = {finding.check.value for finding in findings}
    kept = [item for item in channel.checks or [] if item.get("check") not in replaced]
    return kept + [finding.as_dict() for finding in findings]


def channel_verify(channel: SalesChannel, *, now: datetime | None = None) -> list[Finding]:
    """Look for a proof of ownership now; marks the channel verified on the first found.

    Returns the findings (TXT, then HTTP token). Nothing happens for a verified channel."""
    now = now or timezone.now()
    if channel.hostname_verified_at is not None:
        return []
    findings = [
        txt_verify(resolver(), channel.hostname, channel.verification_token),
        http_token_verify(channel),
    ]
    channel.checks = checks_merge(channel, findings)
    SalesChannel.objects.filter(pk=channel.pk).update(checks=channel.checks)
    proof = next((finding for finding in findings if finding.ok), None)
    if proof is not None:
        method = VerificationMethod.TXT if proof.check == Check.TXT else VerificationMethod.HTTP
        channel_hostname_verified_mark(
            channel=channel, method=method, actor=None, details={"finding": proof.as_dict()}
        )
        return findings
    attempts = channel.verification_attempts + 1
    next_check = now + verification_interval(attempts)
    SalesChannel.objects.filter(pk=channel.pk, hostname_verified_at__isnull=True).update(
        verification_attempts=attempts,
        verification_checked_at=now,
        verification_next_check_at=next_check,
    )
    channel.verification_attempts = attempts
    channel.verification_checked_at = now
    channel.verification_next_check_at = next_check
    shown = _unverified_finding(findings)
    if channel.ssl_mode == SalesChannel.SslMode.MANAGED:
        status_set(
            channel,
            ChannelStatus.UNVERIFIED,
            reason=shown.reason.value,
            params={**shown.params, "token": channel.verification_token},
            next_attempt_at=next_check,
            checked=True,
            now=now,
        )
    logger.info(
        "channel %s (%s): hostname not verified yet (%s); next check %s",
        channel.pk,
        channel.hostname,
        ", ".join(finding.reason.value for finding in findings),
        next_check.isoformat(),
        extra={"event": "channel_verification_failed", "channel_id": channel.pk},
    )
    return findings


def _unverified_finding(findings: list[Finding]) -> Finding:
    """The finding the status names: the TXT one (whose advice says what to publish),
    unless the lookup itself failed while the HTTP token got an answer."""
    txt = next(finding for finding in findings if finding.check == Check.TXT)
    if txt.reason in (Reason.TXT_MISSING, Reason.TXT_WRONG):
        return txt
    return next((f for f in findings if f.check == Check.HTTP_TOKEN), txt)


def channels_verification_due(now: datetime):
    """Unverified channels that need a proof and whose next check is due."""
    return SalesChannel.objects.filter(
        NEEDS_PROOF,
        Q(verification_next_check_at__isnull=True) | Q(verification_next_check_at__lte=now),
        hostname_verified_at__isnull=True,
    )
