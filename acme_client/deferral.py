"""An order the CA's rate limits do not allow yet (README, "Rate limits (the CA's budgets)").

The order is not placed (or, after a CA's 429 "rateLimited", not placed again) before the
budget frees: the channel is `queued`, says for which budget and until when, and is due again
then (renewal_next_attempt_at), when `renew_due` picks it up. It is the platform's limit, not
the channel's failure: no failure is counted, nothing counts in the alert banner, and no
"renewal failed" is recorded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import event_log
from saleschannels.findings import Check, Finding, Reason
from saleschannels.models import ChannelStatus, SalesChannel
from saleschannels.status import status_set

from . import budgets
from .budgets import BudgetFull, Need
from .limits import Budget, rate_limit_scope
from .problems import AcmeOutcome, ca_describe

logger = logging.getLogger(__name__)

# How long a 429 "rateLimited" without Retry-After holds its budget (Let's Encrypt always
# sends one: https://letsencrypt.org/docs/rate-limits/#retrying-after-hitting-rate-limits).
HOLD_WITHOUT_RETRY_AFTER = timedelta(minutes=30)

REASONS: dict[Budget, Reason] = {
    Budget.NEW_ORDERS: Reason.CA_BUDGET_ORDERS,
    Budget.REGISTERED_DOMAIN: Reason.CA_BUDGET_DOMAIN,
    Budget.DUPLICATE: Reason.CA_BUDGET_NAME,
    Budget.FAILED_VALIDATIONS: Reason.CA_BUDGET_VALIDATIONS,
}


def clock_words(moment: datetime, *, now: datetime) -> str:
    """ "14:05 UTC" (rounded up to the minute, so never before the moment), with the day when
    it is not today's: "14:05 UTC on 3 March"."""
    moment = moment.astimezone(UTC)
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    words = f"{moment:%H:%M} UTC"
    if moment.date() != now.astimezone(UTC).date():
        words += f" on {moment.day} {moment:%B}"
    return words


def deferral_finding(
    full: BudgetFull, *, hostname: str, directory_url: str, now: datetime
) -> Finding:
    """The typed reason a queued channel shows (saleschannels/findings.py has its words)."""
    params = {
        "ca": ca_describe(directory_url).name,
        "hostname": hostname,
        "frees_at": clock_words(full.frees_at, now=now),
    }
    if full.need.budget is Budget.REGISTERED_DOMAIN:
        params["domain"] = full.need.key
    return Finding(check=Check.ACME, reason=REASONS[full.need.budget], params=params)


def channel_defer(
    channel: SalesChannel, *, claim: str, full: BudgetFull, directory_url: str, order_id=None
) -> Finding:
    """Queue the claimed channel until the budget frees and release the claim; returns the
    finding shown."""
    now = timezone.now()
    if not full.held:
        full = BudgetFull(
            full.need, _frees_at_in_line(channel, full, ca=directory_url, now=now) or full.frees_at
        )
    finding = deferral_finding(
        full, hostname=channel.hostname, directory_url=directory_url, now=now
    )
    with transaction.atomic():
        SalesChannel.objects.filter(pk=channel.pk, renewal_claim=claim).update(
            renewal_next_attempt_at=full.frees_at, renewal_claim="", renewal_claimed_until=None
        )
        status_set(
            channel,
            ChannelStatus.QUEUED,
            reason=finding.reason.value,
            params=finding.params,
            next_attempt_at=full.frees_at,
            checked=True,
            now=now,
        )
    event_log(
        logger,
        "acme_order_deferred",
        "channel {channel_id} ({hostname}): no order, the {budget} budget of {shown_key} is "
        "{state} until {frees_at}",
        shown={
            "shown_key": full.need.key or "the account",
            "state": "held by the CA" if full.held else "spent",
        },
        hostname=channel.hostname,
        budget=full.need.budget.value,
        frees_at=full.frees_at.isoformat(),
        channel_id=channel.pk,
        institution_id=channel.institution_id,
        order_id=order_id,
    )
    return finding


def _frees_at_in_line(
    channel: SalesChannel, full: BudgetFull, *, ca: str, now: datetime
) -> datetime | None:
    """A spent budget's slots free one by one: the channels already queued for it are ahead
    in line (budgets.frees_at_in_line), so a thousand waiting shops wake a slot's worth at a
    time instead of all at once."""
    waiting = SalesChannel.objects.filter(
        status=ChannelStatus.QUEUED,
        status_reason=REASONS[full.need.budget].value,
        renewal_next_attempt_at__gt=now,
    ).exclude(pk=channel.pk)
    if full.need.budget is Budget.REGISTERED_DOMAIN:
        waiting = waiting.filter(status_params__domain=full.need.key)
    elif full.need.budget is not Budget.NEW_ORDERS:
        return None  # one hostname's own budget: nobody else waits for it
    frees_at = budgets.frees_at_in_line(full.need, ca=ca, ahead=waiting.count(), now=now)
    return max(frees_at, full.frees_at) if frees_at is not None else None


def _texts(error: BaseException | None) -> list[str]:
    """The messages along the chain of causes (the CA's problem detail is one of them)."""
    texts = []
    while error is not None and len(texts) < 5:
        texts.append(str(error))
        error = error.__cause__
    return texts


def rate_limit_hold(
    error: BaseException, *, outcome: AcmeOutcome, hostname: str, ca: str
) -> BudgetFull:
    """Record the CA's 429 "rateLimited" as a hold on the budget it was about (its detail
    naming the hostname's registered domain, the name, or else the whole account) until its
    Retry-After; returns what the channel is deferred by."""
    budget, key = rate_limit_scope(_texts(error), hostname=hostname)
    if outcome.retry_after is not None:
        wait = timedelta(seconds=outcome.retry_after)
    else:
        wait = HOLD_WITHOUT_RETRY_AFTER
    need = Need(budget, key)
    until = timezone.now() + wait
    budgets.hold_record(need, ca=ca, until=until)
    return BudgetFull(need, until, held=True)
