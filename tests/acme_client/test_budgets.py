"""The ledger of the CA's rate limits (acme_client/budgets.py, acme_client/limits.py): slots
taken until a budget is full, when it frees, a window that slides, several budgets taken all
or nothing, holds, and takers racing from threads against the real database (SQLite here,
PostgreSQL under scripts/with-postgres)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection

from acme_client import budgets
from acme_client.budgets import BudgetFull, Need
from acme_client.deferral import clock_words
from acme_client.limits import (
    Budget,
    Limit,
    limit_parse,
    name_set_key,
    rate_limit_scope,
    registered_domain,
)
from acme_client.models import AcmeOrder, BudgetSlot

CA = "https://ca.example/directory"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DOMAIN = Need(Budget.REGISTERED_DOMAIN, "example.com")
ACCOUNT = Need(Budget.NEW_ORDERS, "")


@pytest.fixture(autouse=True)
def no_margin(settings):
    settings.ACME_RATE_LIMIT_MARGIN = 0


# Settings and names (no database).


@pytest.mark.parametrize(
    ("value", "limit"),
    [
        ("300/3h", Limit(300, timedelta(hours=3))),
        ("50/7d", Limit(50, timedelta(days=7))),
        (" 5 / h ", Limit(5, timedelta(hours=1))),
        ("20/90m", Limit(20, timedelta(minutes=90))),
        ("10/30s", Limit(10, timedelta(seconds=30))),
        ("off", None),
        ("OFF", None),
    ],
)
def test_a_limit_is_read_from_its_setting(value, limit):
    assert limit_parse(value) == limit


@pytest.mark.parametrize("value", ["", "300", "300/3w", "0/1h", "5/0h", "-1/1h", "lots/3h"])
def test_an_unreadable_limit_is_refused(value):
    with pytest.raises(ValueError):
        limit_parse(value)


@pytest.mark.parametrize(
    ("hostname", "domain"),
    [
        ("shop.example.co.uk", "example.co.uk"),
        ("a.b.example.com", "example.com"),
        ("Example.COM.", "example.com"),
        ("shop.acme.test", "acme.test"),  # an unknown last label counts as a public suffix
        ("co.uk", "co.uk"),  # a public suffix is its own
    ],
)
def test_the_registered_domain_comes_from_the_public_suffix_list(hostname, domain):
    assert registered_domain(hostname) == domain


def test_a_name_set_ignores_case_and_order():
    assert name_set_key(["b.example", "A.example"]) == name_set_key(["a.example", "b.example"])


@pytest.mark.parametrize(
    ("detail", "scope"),
    [
        (
            'too many certificates (50) already issued for "example.com" in the last 168h0m0s',
            (Budget.REGISTERED_DOMAIN, "example.com"),
        ),
        (
            "too many certificates (5) already issued for this exact set of identifiers",
            (Budget.DUPLICATE, "shop.example.com"),
        ),
        (
            'too many failed authorizations (5) for "shop.example.com" in the last 1h0m0s',
            (Budget.FAILED_VALIDATIONS, "shop.example.com"),
        ),
        ("too many new orders (300) from this account", (Budget.NEW_ORDERS, "")),
        # A name certmgr does not know is never taken from the CA's text.
        ('too many certificates already issued for "other.example"', (Budget.NEW_ORDERS, "")),
    ],
)
def test_a_rate_limit_is_scoped_by_the_cas_detail(detail, scope):
    assert rate_limit_scope([detail], hostname="shop.example.com") == scope


def test_the_time_a_budget_frees_is_said_to_the_minute_rounded_up():
    assert clock_words(datetime(2026, 3, 2, 14, 4, 30, tzinfo=UTC), now=T0) == "14:05 UTC"
    assert clock_words(datetime(2026, 3, 2, 14, 5, tzinfo=UTC), now=T0) == "14:05 UTC"
    assert clock_words(datetime(2026, 3, 3, 9, 0, tzinfo=UTC), now=T0) == "09:00 UTC on 3 March"


def test_manage_py_check_names_an_unreadable_limit(settings):
    settings.ACME_RATE_LIMIT_DUPLICATE = "5/week"
    with pytest.raises(SystemCheckError, match="certmgr.E003.*ACME_RATE_LIMIT_DUPLICATE"):
        call_command("check")


# The ledger.


def take(*needs, now):
    budgets.budgets_take(list(needs), ca=CA, now=now)


@pytest.mark.django_db
def test_slots_are_taken_until_the_budget_is_full(settings):
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "3/1h"
    for minute in range(3):
        take(DOMAIN, now=T0 + timedelta(minutes=minute))
    with pytest.raises(BudgetFull) as full:
        take(DOMAIN, now=T0 + timedelta(minutes=10))
    # Frees when the oldest take is a window old.
    assert full.value.frees_at == T0 + timedelta(hours=1)
    assert full.value.need == DOMAIN and not full.value.held
    assert budgets.budget_frees_at(DOMAIN, ca=CA, now=T0 + timedelta(minutes=10)) == (
        T0 + timedelta(hours=1)
    )
    # Another key, another CA: budgets of their own.
    take(Need(Budget.REGISTERED_DOMAIN, "example.org"), now=T0)
    budgets.budgets_take([DOMAIN], ca="https://other-ca.example/directory", now=T0)


@pytest.mark.django_db
def test_the_window_slides(settings):
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "2/1h"
    take(DOMAIN, now=T0)
    take(DOMAIN, now=T0 + timedelta(minutes=30))
    with pytest.raises(BudgetFull):
        take(DOMAIN, now=T0 + timedelta(minutes=59))
    take(DOMAIN, now=T0 + timedelta(hours=1))  # the first take is a window old
    with pytest.raises(BudgetFull) as full:
        take(DOMAIN, now=T0 + timedelta(hours=1, minutes=1))
    assert full.value.frees_at == T0 + timedelta(minutes=90)
    take(DOMAIN, now=T0 + timedelta(minutes=90))
    assert BudgetSlot.objects.count() == 2  # slots are reused, not added


@pytest.mark.django_db
def test_the_margin_is_added_to_the_window(settings):
    settings.ACME_RATE_LIMIT_MARGIN = 10
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "1/1h"
    take(DOMAIN, now=T0)
    with pytest.raises(BudgetFull) as full:
        take(DOMAIN, now=T0 + timedelta(hours=1, seconds=5))
    assert full.value.frees_at == T0 + timedelta(hours=1, seconds=10)


@pytest.mark.django_db
def test_several_budgets_are_taken_all_or_nothing(settings):
    settings.ACME_RATE_LIMIT_NEW_ORDERS = "10/3h"
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "1/7d"
    needs = budgets.order_needs("shop.example.com")
    budgets.budgets_take(needs, ca=CA, now=T0)
    with pytest.raises(BudgetFull) as full:
        budgets.budgets_take(budgets.order_needs("www.example.com"), ca=CA, now=T0)
    assert full.value.need == DOMAIN
    # The new-order slot taken before the full budget was rolled back with it.
    used = BudgetSlot.objects.filter(budget=Budget.NEW_ORDERS, used_at__isnull=False)
    assert used.count() == 1


@pytest.mark.django_db
def test_off_counts_nothing(settings):
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "off"
    for _ in range(100):
        take(DOMAIN, now=T0)
    assert not BudgetSlot.objects.exists()


@pytest.mark.django_db
def test_an_order_without_a_certificate_gives_back_what_counts_issued_certificates(settings):
    settings.ACME_RATE_LIMIT_NEW_ORDERS = "2/3h"
    settings.ACME_RATE_LIMIT_DUPLICATE = "1/7d"
    first = AcmeOrder.objects.create(hostname="shop.example.com", directory_url=CA)
    budgets.order_budgets_take(hostname="shop.example.com", ca=CA, order=first, now=T0)
    assert budgets.order_budgets_give_back(first) == 2  # registered domain and duplicate
    second = AcmeOrder.objects.create(hostname="shop.example.com", directory_url=CA)
    budgets.order_budgets_take(hostname="shop.example.com", ca=CA, order=second, now=T0)
    # New orders count whatever happens: the account's two are spent.
    with pytest.raises(BudgetFull) as full:
        budgets.order_budgets_take(hostname="other.example", ca=CA, order=None, now=T0)
    assert full.value.need == ACCOUNT


@pytest.mark.django_db
def test_a_full_failed_validation_budget_refuses_the_order(settings):
    settings.ACME_RATE_LIMIT_FAILED_VALIDATIONS = "2/1h"
    for minute in (0, 5, 10):  # the third is not counted: the budget was full
        budgets.validation_failed(
            hostname="shop.example.com", ca=CA, now=T0 + timedelta(minutes=minute)
        )
    with pytest.raises(BudgetFull) as full:
        budgets.order_budgets_take(hostname="shop.example.com", ca=CA, order=None, now=T0)
    assert full.value.need == Need(Budget.FAILED_VALIDATIONS, "shop.example.com")
    assert full.value.frees_at == T0 + timedelta(hours=1)
    assert not BudgetSlot.objects.filter(budget=Budget.NEW_ORDERS).exists()
    budgets.order_budgets_take(hostname="www.example.com", ca=CA, order=None, now=T0)


@pytest.mark.django_db
def test_a_hold_of_the_ca_stops_every_order_of_its_scope_until_it_ends():
    budgets.hold_record(DOMAIN, ca=CA, until=T0 + timedelta(hours=2))
    budgets.hold_record(DOMAIN, ca=CA, until=T0 + timedelta(hours=1))  # earlier: no change
    with pytest.raises(BudgetFull) as full:
        budgets.order_budgets_take(hostname="shop.example.com", ca=CA, order=None, now=T0)
    assert full.value.held and full.value.frees_at == T0 + timedelta(hours=2)
    budgets.order_budgets_take(hostname="shop.example.org", ca=CA, order=None, now=T0)
    budgets.hold_record(ACCOUNT, ca=CA, until=T0 + timedelta(minutes=5))
    with pytest.raises(BudgetFull) as full:
        budgets.order_budgets_take(hostname="shop.example.org", ca=CA, order=None, now=T0)
    assert full.value.need == ACCOUNT
    later = T0 + timedelta(hours=2)
    budgets.order_budgets_take(hostname="shop.example.com", ca=CA, order=None, now=later)


# Takers racing from threads, each with its own database connection.

RACERS = 8


def race(action) -> list:
    """Run `action()` in RACERS threads released at once; their results (or exceptions)."""
    barrier = threading.Barrier(RACERS)
    results: list = [None] * RACERS

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action()
        except Exception as error:  # the outcome under test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_racing_takers_get_exactly_the_budget(settings):
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "5/1h"

    def attempt():
        take(DOMAIN, now=T0)
        return "taken"

    results = race(attempt)
    assert results.count("taken") == 5, results
    assert sum(isinstance(result, BudgetFull) for result in results) == RACERS - 5, results
    assert BudgetSlot.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_racing_takers_reuse_freed_slots_exactly_once(settings):
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "3/1h"
    for _ in range(3):
        take(DOMAIN, now=T0)
    later = T0 + timedelta(hours=1)

    def attempt():
        take(DOMAIN, now=later)
        return "taken"

    results = race(attempt)
    assert results.count("taken") == 3, results
    assert set(BudgetSlot.objects.values_list("used_at", flat=True)) == {later}


@pytest.mark.django_db(transaction=True)
def test_racing_orders_across_budgets_never_exceed_any(settings):
    settings.ACME_RATE_LIMIT_NEW_ORDERS = "4/3h"
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "3/7d"
    hostnames = [f"shop{index}.example.com" for index in range(RACERS // 2)]
    hostnames += [f"shop{index}.example.org" for index in range(RACERS // 2)]
    names = iter(hostnames)
    lock = threading.Lock()

    def attempt():
        with lock:
            hostname = next(names)
        budgets.order_budgets_take(hostname=hostname, ca=CA, order=None, now=T0)
        return hostname

    results = race(attempt)
    placed = [result for result in results if isinstance(result, str)]
    assert len(placed) == 4, results
    for domain in ("example.com", "example.org"):
        assert sum(name.endswith(domain) for name in placed) <= 3
    used = BudgetSlot.objects.filter(used_at__isnull=False)
    assert used.filter(budget=Budget.NEW_ORDERS).count() == 4
    assert used.filter(budget=Budget.DUPLICATE).count() == 4
