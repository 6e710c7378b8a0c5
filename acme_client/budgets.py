"""The ledger of the CA's rate limits (README, "Rate limits (the CA's budgets)").

What each budget is and how it is set: acme_client/limits.py. Here they are kept in the
database, so that they hold across any number of workers and beats:

- A budget of N per window W keeps N slots per key (`BudgetSlot`). Taking one is a
  conditional UPDATE of a slot last used at or before now - (W + margin), or the INSERT of the
  next slot while fewer than N exist (a unique constraint: the loser of a race retries). A
  slot is thus taken at most once per W, and no window of length W holds more than N takes.
  PostgreSQL (READ COMMITTED) re-checks the UPDATE's condition on a row another transaction
  changed meanwhile; SQLite runs transactions IMMEDIATE (certmgr/settings.py), one at a time.
- The budgets an order needs are taken all or nothing, in one transaction, always in the
  same order (no deadlock between two takers). When one is full the order is not placed: it
  waits until the budget frees, the oldest take's time + W + margin.
- The margin (ACME_RATE_LIMIT_MARGIN) covers the time between our clock reading and the CA
  receiving the request.
- Let's Encrypt counts issued certificates for the registered-domain and duplicate limits,
  so an order that ends without one gives those slots back (the take is undone while the slot
  is still the order's); new orders count whatever happens.
- A CA's 429 "rateLimited" with Retry-After becomes a hold (`BudgetHold`) on the budget and
  key it was about: no order needing them is placed before it ends, by any worker.

Let's Encrypt counts with token buckets (https://letsencrypt.org/docs/rate-limits/): N in a
burst, then one every W/N. At most N in any window W never exceeds such a bucket.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from .limits import (
    COUNTS_ISSUED,
    DEFAULTS,
    SETTINGS,
    Budget,
    Limit,
    limit_parse,
    name_set_key,
    registered_domain,
)
from .models import AcmeOrder, BudgetHold, BudgetSlot

logger = logging.getLogger(__name__)

# Races lost in a row before a take gives up for now (each lost race is another worker's
# take, so this many means the budget is as good as full).
TAKE_ATTEMPTS = 20


@dataclass(frozen=True)
class Need:
    """One slot of one budget, for one key."""

    budget: Budget
    key: str


class BudgetFull(Exception):
    """An order would exceed a budget (or the CA holds it): not placed before `frees_at`."""

    def __init__(self, need: Need, frees_at: datetime, *, held: bool = False):
        super().__init__(
            f"{need.budget} budget of {need.key or 'the account'} "
            f"{'held' if held else 'full'} until {frees_at.isoformat()}"
        )
        self.need = need
        self.frees_at = frees_at
        self.held = held


def limit_of(budget: Budget) -> Limit | None:
    """The budget's limit from its setting (None: off). An unreadable setting, which `manage.py
    check` reports (certmgr.E003), counts as the CA's default rather than as no limit."""
    value = getattr(settings, SETTINGS[budget], DEFAULTS[budget])
    try:
        return limit_parse(value)
    except ValueError as error:
        logger.error("%s: %s; using %s", SETTINGS[budget], error, DEFAULTS[budget])
        return limit_parse(DEFAULTS[budget])


def margin() -> timedelta:
    return timedelta(seconds=settings.ACME_RATE_LIMIT_MARGIN)


def order_needs(hostname: str) -> list[Need]:
    """What a new order for `hostname` takes, in the order they are always taken."""
    return [
        Need(Budget.NEW_ORDERS, ""),
        Need(Budget.REGISTERED_DOMAIN, registered_domain(hostname)),
        Need(Budget.DUPLICATE, name_set_key([hostname])),
    ]


def validation_need(hostname: str) -> Need:
    return Need(Budget.FAILED_VALIDATIONS, hostname)


def _slots(ca: str, need: Need, limit: Limit):
    return BudgetSlot.objects.filter(ca=ca, budget=need.budget, key=need.key, slot__lt=limit.count)


def _free(cutoff: datetime) -> Q:
    return Q(used_at__isnull=True) | Q(used_at__lte=cutoff)


class _RaceLost(Exception):
    """Another worker took the slot planned (or added it) first: read the ledger again."""


@dataclass(frozen=True)
class _Ledger:
    """The slots and the holds of some needs at one moment, read in two queries (outside any
    write transaction: the takes are conditional, so a stale read only loses a race)."""

    slots: dict[tuple[str, str], list[tuple[int, int, datetime | None]]]
    holds: dict[tuple[str, str], datetime]
    now: datetime

    def held(self, needs: list[Need]) -> tuple[Need, datetime] | None:
        """The latest hold the CA put on any of `needs` that is not over, or None."""
        found = [
            (self.holds[(n.budget, n.key)], n) for n in needs if (n.budget, n.key) in self.holds
        ]
        if not found:
            return None
        until, need = max(found, key=lambda pair: pair[0])
        return need, until

    def step(self, need: Need, limit: Limit) -> tuple[int | None, int] | datetime:
        """How to take one slot of `need`: (pk of a free slot, its number), or (None, the
        number of the slot to add); when the budget is full, the moment it frees."""
        cutoff = self.now - limit.window - margin()
        rows = sorted(
            (slot, pk, used_at)
            for pk, slot, used_at in self.slots.get((need.budget, need.key), [])
            if slot < limit.count
        )
        for slot, pk, used_at in rows:
            if used_at is None or used_at <= cutoff:
                return pk, slot
        if len(rows) < limit.count:
            return None, len(rows)
        oldest = min((used_at for _, _, used_at in rows if used_at is not None), default=None)
        return (oldest or self.now) + limit.window + margin()

    def frees_at(self, need: Need) -> tuple[datetime, bool] | None:
        """When `need`'s budget frees (and whether the CA holds it), or None: free now."""
        held = self.held([need])
        if held is not None:
            return held[1], True
        limit = limit_of(need.budget)
        if limit is None:
            return None
        step = self.step(need, limit)
        return (step, False) if isinstance(step, datetime) else None


def _ledger_read(ca: str, needs: list[Need], now: datetime) -> _Ledger:
    wanted = Q()
    for need in needs:
        wanted |= Q(budget=need.budget, key=need.key)
    slots: dict[tuple[str, str], list[tuple[int, int, datetime | None]]] = {}
    rows = BudgetSlot.objects.filter(wanted, ca=ca).values_list(
        "pk", "budget", "key", "slot", "used_at"
    )
    for pk, budget, key, slot, used_at in rows:
        slots.setdefault((budget, key), []).append((pk, slot, used_at))
    holds: dict[tuple[str, str], datetime] = {}
    for budget, key, until in BudgetHold.objects.filter(wanted, ca=ca, until__gt=now).values_list(
        "budget", "key", "until"
    ):
        holds[(budget, key)] = max(until, holds.get((budget, key), until))
    return _Ledger(slots=slots, holds=holds, now=now)


def _slot_take(
    ca: str, need: Need, limit: Limit, step: tuple[int | None, int], *, order, now: datetime
) -> None:
    """Take the slot `step` planned, only while it is still free; raises _RaceLost."""
    pk, number = step
    if pk is not None:
        cutoff = now - limit.window - margin()
        taken = BudgetSlot.objects.filter(_free(cutoff), pk=pk).update(
            previous_used_at=F("used_at"), used_at=now, order=order
        )
        if taken != 1:
            raise _RaceLost()
        return
    try:
        with transaction.atomic():
            BudgetSlot.objects.create(
                ca=ca, budget=need.budget, key=need.key, slot=number, used_at=now, order=order
            )
    except IntegrityError:
        raise _RaceLost() from None  # another worker added that slot first


def _take(
    needs: list[Need],
    *,
    ca: str,
    now: datetime,
    order: AcmeOrder | None = None,
    create: Callable[[], AcmeOrder] | None = None,
    checks: tuple[Need, ...] = (),
) -> AcmeOrder | None:
    """Take one slot of each need, all or nothing, after `checks` (budgets that must not be
    full, nothing taken of them). The ledger is read first; then one short transaction
    creates the order (`create`, so that a full budget leaves no order behind) and takes
    each planned slot conditionally. A lost race rolls it all back and reads again."""
    for _ in range(TAKE_ATTEMPTS):
        ledger = _ledger_read(ca, [*checks, *needs], now)
        for need in checks:
            blocked = ledger.frees_at(need)
            if blocked is not None:
                raise BudgetFull(need, blocked[0], held=blocked[1])
        held = ledger.held(needs)
        if held is not None:
            raise BudgetFull(held[0], held[1], held=True)
        plan = []
        for need in needs:
            limit = limit_of(need.budget)
            if limit is None:
                continue
            step = ledger.step(need, limit)
            if isinstance(step, datetime):
                raise BudgetFull(need, step)
            plan.append((need, limit, step))
        try:
            with transaction.atomic():
                made = create() if create is not None else order
                for need, limit, step in plan:
                    _slot_take(ca, need, limit, step, order=made, now=now)
            return made
        except _RaceLost:
            continue
    # Each lost race is another worker's take: the budget is as good as full.
    raise BudgetFull(needs[0], now + margin())


def budgets_take(
    needs: list[Need], *, ca: str, order: AcmeOrder | None = None, now: datetime | None = None
) -> None:
    """Take one slot of each need, all or nothing; raises BudgetFull (taking none) when one is
    full or held."""
    _take(needs, ca=ca, order=order, now=now or timezone.now())


def budget_frees_at(need: Need, *, ca: str, now: datetime | None = None) -> datetime | None:
    """When the budget frees if it is full or held now; None when a take would succeed."""
    now = now or timezone.now()
    blocked = _ledger_read(ca, [need], now).frees_at(need)
    return blocked[0] if blocked is not None else None


def order_budgets_check(
    *, hostname: str, ca: str, now: datetime | None = None
) -> BudgetFull | None:
    """Whether a new order for `hostname` would find every budget free now (None), else the
    first that is full or held. Takes nothing: asked before the pre-flight checks, so that a
    channel that must wait anyway costs no DNS or HTTP work (the take may still lose a race)."""
    now = now or timezone.now()
    needs = [validation_need(hostname), *order_needs(hostname)]
    ledger = _ledger_read(ca, needs, now)
    for need in needs:
        blocked = ledger.frees_at(need)
        if blocked is not None:
            return BudgetFull(need, blocked[0], held=blocked[1])
    return None


def frees_at_in_line(need: Need, *, ca: str, ahead: int, now: datetime) -> datetime | None:
    """When an order that finds `need` full gets a slot, with `ahead` orders already waiting
    for it: each waiter is given the moment one slot frees (the oldest for the first, the
    next for the second, ... a window later once every slot is promised), rather than all the
    same moment, when all but N would find it full again. None when the budget is off."""
    limit = limit_of(need.budget)
    if limit is None:
        return None
    times = sorted(
        used_at
        for used_at in _slots(ca, need, limit).values_list("used_at", flat=True)
        if used_at is not None
    )
    if not times:
        return now
    rounds, index = divmod(ahead, len(times))
    return times[index] + (rounds + 1) * (limit.window + margin())


def order_budgets_take(
    *,
    hostname: str,
    ca: str,
    order: AcmeOrder | None,
    create: Callable[[], AcmeOrder] | None = None,
    now: datetime | None = None,
) -> AcmeOrder | None:
    """Take the budgets of a new order for `hostname` (one not exempt as an ARI renewal), and
    refuse it while the hostname's failed-validation budget is full (the CA would refuse its
    validation anyway). Raises BudgetFull, having taken (and created) nothing. With `create`,
    the order row is made in the same transaction as the takes; returns the order."""
    return _take(
        order_needs(hostname),
        ca=ca,
        order=order,
        create=create,
        now=now or timezone.now(),
        checks=(validation_need(hostname),),
    )


def order_budgets_give_back(order: AcmeOrder) -> int:
    """Undo the registered-domain and duplicate takes of an order that ended without a
    certificate (while each slot is still the order's); returns how many."""
    return BudgetSlot.objects.filter(order=order, budget__in=list(COUNTS_ISSUED)).update(
        used_at=F("previous_used_at"), previous_used_at=None, order=None
    )


def validation_failed(*, hostname: str, ca: str, now: datetime | None = None) -> None:
    """Count a failed validation of `hostname` (nothing when its budget is already full)."""
    with contextlib.suppress(BudgetFull):
        budgets_take([validation_need(hostname)], ca=ca, now=now)


def hold_record(need: Need, *, ca: str, until: datetime) -> None:
    """Hold `need`'s budget until `until` (a CA's 429 with Retry-After); a later hold of the
    same budget and key extends it, an earlier one changes nothing."""
    for _ in range(TAKE_ATTEMPTS):
        holds = BudgetHold.objects.filter(ca=ca, budget=need.budget, key=need.key)
        if holds.filter(until__lt=until).update(until=until) or holds.exists():
            return
        try:
            with transaction.atomic():
                BudgetHold.objects.create(ca=ca, budget=need.budget, key=need.key, until=until)
            return
        except IntegrityError:
            continue  # another worker recorded it first: extend theirs
