"""Pre-flight checks before every new order (README, "Onboarding a hostname").

Before the first issuance and before each renewal, certmgr checks what the CA is about to
check, so that a problem is named in plain words before anything reaches the CA (whose failed
validations count against a rate limit, e.g. Let's Encrypt's 5 per hostname per hour,
https://letsencrypt.org/docs/rate-limits/):

1. DNS: the hostname's addresses (CNAMEs followed) are the edge's, or its CNAME chain
   reaches CERTMGR_EDGE_CNAME (onboarding/dns.py).
2. CAA (RFC 8659, https://www.rfc-editor.org/rfc/rfc8659): the relevant record set permits
   the CA (ACME_CAA_IDENTITIES), for this account and http-01 (RFC 8657) (onboarding/caa.py).
3. HTTP-01 reachability: a self-check token published like a real challenge is fetched the
   way the CA fetches it, redirects included (onboarding/checks_http.py).

All three run every time, so that the page shows every problem at once.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from certificates.renewal import failure_backoff
from onboarding.caa import caa_check
from onboarding.checks_http import http01_self_check
from onboarding.dns import AddressAnswer, addresses_lookup, edge_check
from onboarding.resolving import resolver
from onboarding.services import checks_merge
from saleschannels.findings import Check, Finding
from saleschannels.models import ChannelStatus, SalesChannel
from saleschannels.status import status_set

from .challenges import challenge_publish, challenge_withdraw
from .models import AcmeAccount

logger = logging.getLogger(__name__)

# The status a channel waits in while a check fails, in the order the checks are said.
WAITING = {
    Check.DNS: ChannelStatus.WAITING_DNS,
    Check.CAA: ChannelStatus.WAITING_CAA,
    Check.HTTP: ChannelStatus.WAITING_HTTP,
}


def channel_preflight(channel: SalesChannel) -> list[Finding]:
    """The DNS, CAA and HTTP-01 findings for the channel's hostname, in that order."""
    hostname = channel.hostname
    dns_resolver = resolver()
    looked_up = addresses_lookup(dns_resolver, hostname)
    dns = edge_check(
        looked_up,
        edge_addresses=settings.CERTMGR_EDGE_ADDRESSES,
        edge_cname=settings.CERTMGR_EDGE_CNAME,
    )
    caa = caa_check(
        dns_resolver,
        hostname,
        identities=settings.ACME_CAA_IDENTITIES,
        account_uri=_account_uri(),
    )
    return [dns, caa, _http01_self_check(hostname, looked_up=looked_up)]


def preflight_blocker(findings: list[Finding]) -> Finding | None:
    """The first failing finding (DNS, then CAA, then HTTP), or None when all pass."""
    return next((finding for finding in findings if not finding.ok), None)


def _account_uri() -> str | None:
    return (
        AcmeAccount.objects.filter(directory_url=settings.ACME_DIRECTORY_URL)
        .exclude(uri="")
        .values_list("uri", flat=True)
        .first()
    )


def _http01_self_check(hostname: str, *, looked_up: AddressAnswer) -> Finding:
    """Publish a token as a challenge would be, fetch it as the CA would (at the addresses
    the DNS check found), withdraw it."""
    token = secrets.token_urlsafe(32)
    key_authorization = f"{token}.certmgr-self-check-{secrets.token_urlsafe(16)}"
    challenge_publish(hostname=hostname, token=token, key_authorization=key_authorization)
    try:
        return http01_self_check(hostname, token, key_authorization, looked_up=looked_up)
    finally:
        challenge_withdraw(token=token)


def failure_wait(channel: SalesChannel, failures: int, *, now: datetime) -> timedelta:
    """The backoff after `failures` in a row, capped by the lifetime and the time left of the
    certificate the channel serves meanwhile (certificates/renewal.py)."""
    active = channel.active_certificate
    if active is None:
        return failure_backoff(failures)
    return failure_backoff(
        failures, not_before=active.not_before, not_after=active.expires_at, now=now
    )


def preflight_pass(channel: SalesChannel, *, claim: str, now: datetime | None = None) -> bool:
    """Run the checks for a claimed channel about to be ordered for. When one fails, the
    channel waits (status waiting_dns / waiting_caa / waiting_http with the finding), the
    claim is released and the checks are tried again on the backoff schedule: no order is
    placed, and the CA never hears of it. Returns whether the order may go ahead."""
    now = now or timezone.now()
    status_set(channel, ChannelStatus.CHECKING, now=now)
    findings = channel_preflight(channel)
    channel.checks = checks_merge(channel, findings)
    blocker = preflight_blocker(findings)
    if blocker is None:
        SalesChannel.objects.filter(pk=channel.pk).update(
            checks=channel.checks, checks_failures=0, status_checked_at=now
        )
        channel.checks_failures = 0
        return True
    failures = channel.checks_failures + 1
    next_attempt = now + failure_wait(channel, failures, now=now)
    SalesChannel.objects.filter(pk=channel.pk, renewal_claim=claim).update(
        checks=channel.checks,
        checks_failures=failures,
        renewal_next_attempt_at=next_attempt,
        renewal_claim="",
        renewal_claimed_until=None,
    )
    channel.checks_failures = failures
    status_set(
        channel,
        WAITING[blocker.check],
        reason=blocker.reason.value,
        params=blocker.params,
        next_attempt_at=next_attempt,
        checked=True,
        now=now,
    )
    logger.info(
        "channel %s (%s): no order, pre-flight check failed: %s; next attempt %s",
        channel.pk,
        channel.hostname,
        blocker.reason.value,
        next_attempt.isoformat(),
        extra={
            "event": "acme_preflight_failed",
            "channel_id": channel.pk,
            "institution_id": channel.institution_id,
            "reason": blocker.reason.value,
        },
    )
    return False


def checks_run(channel: SalesChannel, *, now: datetime | None = None) -> list[Finding]:
    """*Check now*: run the checks and store the findings, placing no order. A waiting
    channel whose checks all pass now becomes due at once (the caller queues it)."""
    now = now or timezone.now()
    findings = channel_preflight(channel)
    channel.checks = checks_merge(channel, findings)
    fields = {"checks": channel.checks, "status_checked_at": now}
    if preflight_blocker(findings) is None and channel.status in WAITING.values():
        fields["renewal_next_attempt_at"] = None
    SalesChannel.objects.filter(pk=channel.pk).update(**fields)
    return findings
