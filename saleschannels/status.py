"""The one status of a sales channel (README, "Onboarding a hostname": the lifecycle).

`status_set()` is the only writer of `SalesChannel.status`: it stores the status with its
typed reason and parameters (saleschannels/findings.py gives their words) and, when the
status changes, sends `channel_status_changed` once the transaction commits, which the
monitoring app turns into a webhook event (monitoring/webhooks.py). `status_settle()` derives
the status that the channel's state implies when nothing is under way (after a change of
mode, a verification, an issuance; and periodically, for the statuses that time changes:
renewal due, expired).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone

from .findings import ADVICE, WORDS, Check, Finding, Reason, words_format
from .models import (
    RENEWAL_FAILURES_ALERT,
    STATUSES_IN_PROGRESS,
    ChannelStatus,
    ProbeFailure,
    ProbeStatus,
    SalesChannel,
)

logger = logging.getLogger(__name__)

# Sent (on commit) when a channel's status changes. Arguments: channel_id, institution_id,
# hostname, old, new (ChannelStatus values), reason (a Reason value or ""), params, words.
channel_status_changed = Signal()

# What a status means when no reason says more.
DEFAULT_WORDS: dict[str, str] = {
    ChannelStatus.NONE: "The channel uses no certificate.",
    ChannelStatus.UPLOADED: "The channel serves an uploaded certificate.",
    ChannelStatus.UNVERIFIED: (
        "The platform orders no certificate for {hostname} until its owner proves control of it."
    ),
    ChannelStatus.CHECKING: "Checking DNS, CAA and HTTP before ordering a certificate.",
    ChannelStatus.WAITING_DNS: "Waiting for the hostname's DNS records.",
    ChannelStatus.WAITING_CAA: "Waiting for the hostname's CAA records.",
    ChannelStatus.WAITING_HTTP: "Waiting for the hostname to answer over HTTP.",
    ChannelStatus.ISSUING: "The CA is issuing the certificate.",
    ChannelStatus.QUEUED: "Queued: the order waits for the CA's rate limits.",
    ChannelStatus.ISSUANCE_FAILING: "The first certificate could not be issued yet.",
    ChannelStatus.ACTIVE: "The platform's certificate is served and renews automatically.",
    ChannelStatus.RENEWAL_DUE: "Renewal is due: the platform is renewing the certificate.",
    ChannelStatus.RENEWAL_FAILING: (
        "Renewal failed; the current certificate stays in place until a new one is issued."
    ),
    ChannelStatus.EXPIRED: "The certificate served has expired.",
}


@dataclass(frozen=True)
class StatusShown:
    """A channel's status as people read it."""

    status: str
    label: str
    reason: str
    words: str
    advice: str


def status_shown(channel: SalesChannel) -> StatusShown:
    params = {"hostname": channel.hostname, **(channel.status_params or {})}
    reason = _reason(channel.status_reason)
    if reason is not None:
        words = words_format(WORDS[reason], params)
        advice = words_format(ADVICE[reason], params) if reason in ADVICE else ""
    else:
        words = words_format(DEFAULT_WORDS.get(channel.status, ""), params)
        advice = ""
    return StatusShown(
        status=channel.status,
        label=ChannelStatus(channel.status).label,
        reason=channel.status_reason,
        words=words,
        advice=advice,
    )


def _reason(value: str) -> Reason | None:
    try:
        return Reason(value) if value else None
    except ValueError:
        return Reason.INTERNAL_ERROR


def status_set(
    channel: SalesChannel,
    status: str,
    *,
    reason: str = "",
    params: dict | None = None,
    next_attempt_at: datetime | None = None,
    checked: bool = False,
    now: datetime | None = None,
) -> bool:
    """Store `status` on the channel (and on the instance); returns whether it changed.

    The row is updated with the values given, whatever the instance held; the signal goes out
    only when the status stored before differs (read in the same transaction)."""
    now = now or timezone.now()
    params = params or {}
    fields = {
        "status": status,
        "status_reason": reason,
        "status_params": params,
        "status_next_attempt_at": next_attempt_at,
    }
    if checked:
        fields["status_checked_at"] = now
    with transaction.atomic():
        old = (
            SalesChannel.objects.select_for_update()
            .filter(pk=channel.pk)
            .values_list("status", flat=True)
            .first()
        )
        if old is None:
            return False
        changed = old != status
        if changed:
            fields["status_changed_at"] = now
        SalesChannel.objects.filter(pk=channel.pk).update(**fields)
        for name, value in fields.items():
            setattr(channel, name, value)
        if changed:
            shown = status_shown(channel)
            event = {
                "channel_id": channel.pk,
                "institution_id": channel.institution_id,
                "hostname": channel.hostname,
                "old": old,
                "new": status,
                "reason": reason,
                "params": params,
                "words": shown.words,
            }
            logger.info(
                "channel %s (%s): status %s -> %s %s",
                channel.pk,
                channel.hostname,
                old,
                status,
                reason,
                extra={"event": "channel_status_changed", **event},
            )
            transaction.on_commit(lambda: channel_status_changed.send(sender=SalesChannel, **event))
    return changed


def status_implied(channel: SalesChannel, now: datetime | None = None) -> str | None:
    """The status the channel's state implies when nothing is under way, or None when a
    managed channel's issuance is still pending (its status is the pipeline's to set)."""
    now = now or timezone.now()
    active = channel.active_certificate
    if channel.ssl_mode == SalesChannel.SslMode.NONE:
        return ChannelStatus.NONE
    if active is not None and active.expires_at is not None and active.expires_at <= now:
        return ChannelStatus.EXPIRED
    if channel.ssl_mode == SalesChannel.SslMode.UPLOADED:
        return ChannelStatus.UPLOADED
    if channel.hostname_verified_at is None:
        return ChannelStatus.UNVERIFIED
    if active is None or active.source != active.Source.MANAGED:
        return None
    if channel.renewal_failures >= RENEWAL_FAILURES_ALERT:
        return ChannelStatus.RENEWAL_FAILING
    if channel.renewal_due_at is not None and channel.renewal_due_at <= now:
        return ChannelStatus.RENEWAL_DUE
    return ChannelStatus.ACTIVE


# Statuses a pending managed issuance may be in; anything else becomes `checking`.
_PIPELINE = (
    ChannelStatus.CHECKING,
    ChannelStatus.WAITING_DNS,
    ChannelStatus.WAITING_CAA,
    ChannelStatus.WAITING_HTTP,
    ChannelStatus.ISSUING,
    ChannelStatus.ISSUANCE_FAILING,
    ChannelStatus.QUEUED,
)
# What a queued renewal's state implies meanwhile: it stays queued, saying when it may go on
# (the issuance that follows sets its status).
_QUEUED_KEEPS = (None, ChannelStatus.RENEWAL_DUE, ChannelStatus.RENEWAL_FAILING)


def status_settle(channel: SalesChannel, now: datetime | None = None) -> bool:
    """Set the status the channel's state implies, when it is not the one stored."""
    implied = status_implied(channel, now)
    if channel.status == ChannelStatus.QUEUED and implied in _QUEUED_KEEPS:
        return False
    if implied is None:
        if channel.status in _PIPELINE:
            return False
        implied = ChannelStatus.CHECKING
    if implied == channel.status:
        return False
    # A new status: the reason stored was about the old one.
    return status_set(channel, implied, now=now)


def statuses_refresh(now: datetime | None = None) -> int:
    """Settle the channels whose status time has changed: a renewal that fell due, a
    certificate that expired. One indexed query finds them; returns how many changed."""
    now = now or timezone.now()
    stale = SalesChannel.objects.filter(
        models.Q(status=ChannelStatus.ACTIVE, renewal_due_at__lte=now)
        | (
            models.Q(active_certificate__expires_at__lte=now)
            # A pending issuance keeps its own status (what it waits for); the certificate's
            # expiry shows in the alert banner meanwhile.
            & ~models.Q(status__in=[ChannelStatus.EXPIRED, ChannelStatus.NONE, *_PIPELINE])
        )
    ).select_related("active_certificate", "institution")
    return sum(status_settle(channel, now) for channel in stale.iterator(chunk_size=500))


CHECK_TITLES = {
    Check.TXT: "TXT record",
    Check.HTTP_TOKEN: "HTTP token",
    Check.DNS: "DNS",
    Check.CAA: "CAA",
    Check.HTTP: "HTTP-01",
    Check.ACME: "CA",
    Check.PROBE: "Live probe",
}
_OWNERSHIP = (Check.TXT, Check.HTTP_TOKEN)
_PREFLIGHT = (Check.DNS, Check.CAA, Check.HTTP)


@dataclass(frozen=True)
class FindingShown:
    check: str
    title: str
    ok: bool
    words: str
    advice: str
    reason: str = ""


def findings_shown(channel: SalesChannel) -> dict[str, list[FindingShown]]:
    """The channel's last findings as people read them: {"ownership": [...], "preflight": [...]}."""
    found = {}
    for item in channel.checks or []:
        finding = Finding.from_dict(item)
        params = {"hostname": channel.hostname, **finding.params}
        found[finding.check] = FindingShown(
            check=finding.check.value,
            title=CHECK_TITLES[finding.check],
            ok=finding.ok,
            words=words_format(WORDS[finding.reason], params),
            advice=words_format(ADVICE[finding.reason], params) if finding.reason in ADVICE else "",
        )
    return {
        "ownership": [found[check] for check in _OWNERSHIP if check in found],
        "preflight": [found[check] for check in _PREFLIGHT if check in found],
    }


def status_context(channel: SalesChannel) -> dict:
    """What the status panel and the ownership section of a channel page need."""
    return {
        "status": status_shown(channel),
        "findings": findings_shown(channel),
        "probe_finding": probe_finding(channel),
        # Checking or issuing, or an issuance queued (a worker's claim is held).
        "in_progress": channel.status in STATUSES_IN_PROGRESS
        or (
            channel.renewal_claimed_until is not None
            and channel.renewal_claimed_until > timezone.now()
        ),
    }


# Probe failures said as a typed finding, with words and advice; the others keep their label.
_PROBE_REASONS = {ProbeFailure.DNS: Reason.PROBE_DNS}


def probe_finding(channel: SalesChannel) -> FindingShown | None:
    """Why the channel's last probe failed, as people read it, when the failure has a typed
    reason (the hostname does not resolve); None otherwise."""
    if channel.probe_status != ProbeStatus.FAILED:
        return None
    reason = _PROBE_REASONS.get(channel.probe_failure)
    if reason is None:
        return None
    params = {"hostname": channel.hostname}
    return FindingShown(
        check=Check.PROBE.value,
        title=CHECK_TITLES[Check.PROBE],
        ok=False,
        words=words_format(WORDS[reason], params),
        advice=words_format(ADVICE[reason], params),
        reason=reason.value,
    )
