"""An issuance whose CA budget is spent (README, "Rate limits (the CA's budgets)"): no order
is placed, the channel is queued with the budget and the time in words, no failure counts
and nothing shows in the alert banner; renew_due picks it up once the budget frees.

No CA here: the pre-flight passes (fixture) and the ACME client is never used, since the
budgets are taken before anything is sent."""

from datetime import timedelta

import pytest
from django.utils import timezone

from acme_client import ari, budgets, services
from acme_client.budgets import Need
from acme_client.limits import Budget
from acme_client.models import AcmeOrder, BudgetSlot
from core.models import AuditEvent
from saleschannels.findings import Reason
from saleschannels.models import STATUSES_FAILING, ChannelStatus, channels_needing_action
from saleschannels.status import status_settle, status_shown, statuses_refresh
from tests.acme_client.issuing import issue

pytestmark = pytest.mark.django_db

CA = "https://ca.example/directory"


@pytest.fixture
def offline_ca(settings, monkeypatch, preflight_passes):
    """The budgets are decided before anything reaches the CA: a client that must not be
    used, and no certificate to name as replaced."""
    settings.ACME_DIRECTORY_URL = CA
    settings.ACME_RATE_LIMIT_MARGIN = 0
    monkeypatch.setattr(services, "account_client", lambda deadline: object())
    monkeypatch.setattr(ari, "replaces_for", lambda channel, acme: "")


@pytest.fixture
def channel(acme, make_verified_channel):
    return make_verified_channel(
        acme, name="Main", hostname="shop.example.co.uk", ssl_mode="managed"
    )


def spend(need: Need, *, count: int, at) -> None:
    for _ in range(count):
        budgets.budgets_take([need], ca=CA, now=at)


def test_a_spent_domain_budget_queues_the_channel(offline_ca, channel, alice, settings):
    settings.ACME_RATE_LIMIT_REGISTERED_DOMAIN = "2/7d"
    # Six days ago at 14:05: the budget frees tomorrow at 14:05.
    taken_at = (timezone.now() - timedelta(days=6)).replace(
        hour=14, minute=5, second=0, microsecond=0
    )
    spend(Need(Budget.REGISTERED_DOMAIN, "example.co.uk"), count=2, at=taken_at)

    assert issue(channel) is None
    channel.refresh_from_db()
    frees_at = taken_at + timedelta(days=7)
    assert channel.status == ChannelStatus.QUEUED
    assert channel.status_reason == Reason.CA_BUDGET_DOMAIN
    shown = status_shown(channel)
    assert shown.label == "Queued for the CA"
    assert shown.words == (
        "Queued: the platform's budget for example.co.uk frees at 14:05 UTC"
        f" on {frees_at.day} {frees_at:%B}."
    )
    assert "Nothing to do" in shown.advice
    # Placed nothing, counted no failure, nothing for the banner or the audit trail.
    assert not AcmeOrder.objects.exists()
    assert channel.renewal_failures == 0
    assert channel.renewal_next_attempt_at == frees_at
    assert channel.status_next_attempt_at == frees_at
    assert (channel.renewal_claim, channel.renewal_claimed_until) == ("", None)
    assert channel.status not in STATUSES_FAILING
    assert not channels_needing_action(alice).exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CHANNEL_RENEWAL_FAILED).exists()
    # Nor did the new-order and duplicate budgets lose anything.
    assert not BudgetSlot.objects.filter(budget__in=[Budget.NEW_ORDERS, Budget.DUPLICATE]).exists()

    # The status stays while it waits.
    assert not status_settle(channel)
    assert statuses_refresh() == 0
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.QUEUED

    # renew_due picks it up once the budget frees, not before.
    queued: list[int] = []
    record = lambda channel_id, claim: queued.append(channel_id)  # noqa: E731
    assert services.channels_renew_due(now=frees_at - timedelta(minutes=1), queue=record) == 0
    assert services.channels_renew_due(now=frees_at, queue=record) == 1
    assert queued == [channel.pk]


@pytest.mark.parametrize(
    ("setting", "need", "reason", "words"),
    [
        (
            "ACME_RATE_LIMIT_NEW_ORDERS",
            Need(Budget.NEW_ORDERS, ""),
            Reason.CA_BUDGET_ORDERS,
            "Queued: the platform's budget of new orders at ca.example frees at",
        ),
        (
            "ACME_RATE_LIMIT_DUPLICATE",
            Need(Budget.DUPLICATE, "shop.example.co.uk"),
            Reason.CA_BUDGET_NAME,
            "Queued: the platform's budget for shop.example.co.uk frees at",
        ),
        (
            "ACME_RATE_LIMIT_FAILED_VALIDATIONS",
            Need(Budget.FAILED_VALIDATIONS, "shop.example.co.uk"),
            Reason.CA_BUDGET_VALIDATIONS,
            "Queued: the CA's checks of shop.example.co.uk failed too often lately; the "
            "platform's budget for it frees at",
        ),
    ],
)
def test_each_budget_says_what_is_spent(
    offline_ca, channel, settings, setting, need, reason, words
):
    setattr(settings, setting, "1/1h")
    spend(need, count=1, at=timezone.now())
    assert issue(channel) is None
    channel.refresh_from_db()
    assert (channel.status, channel.status_reason) == (ChannelStatus.QUEUED, reason)
    assert status_shown(channel).words.startswith(words)
    assert channel.renewal_failures == 0
    assert not AcmeOrder.objects.exists()


def test_budgets_that_are_off_queue_nothing(offline_ca, channel, settings, monkeypatch):
    for name in (
        "ACME_RATE_LIMIT_NEW_ORDERS",
        "ACME_RATE_LIMIT_REGISTERED_DOMAIN",
        "ACME_RATE_LIMIT_DUPLICATE",
        "ACME_RATE_LIMIT_FAILED_VALIDATIONS",
    ):
        setattr(settings, name, "off")
    attempted = []

    def obtain(*args, **kwargs):
        attempted.append(kwargs["hostname"])
        raise ConnectionError("no CA in this test")

    monkeypatch.setattr(services.protocol, "certificate_obtain", obtain)
    assert issue(channel) is None
    channel.refresh_from_db()
    assert attempted == ["shop.example.co.uk"]
    assert channel.status == ChannelStatus.ISSUANCE_FAILING
    assert channel.renewal_failures == 1


def test_an_order_that_fails_before_issuance_gives_its_certificate_budgets_back(
    offline_ca, channel, settings, monkeypatch
):
    settings.ACME_RATE_LIMIT_DUPLICATE = "1/7d"

    def obtain(*args, **kwargs):
        raise ConnectionError("no CA in this test")

    monkeypatch.setattr(services.protocol, "certificate_obtain", obtain)
    assert issue(channel) is None
    used = BudgetSlot.objects.filter(used_at__isnull=False)
    assert list(used.values_list("budget", flat=True)) == [Budget.NEW_ORDERS]
    # So the duplicate budget of one is still there for the next attempt.
    assert issue(channel) is None
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.ISSUANCE_FAILING
    assert used.filter(budget=Budget.NEW_ORDERS).count() == 2


def test_channels_waiting_for_a_spent_budget_are_given_one_slot_each_in_line(
    offline_ca, acme, make_verified_channel, settings
):
    # Three new orders an hour, taken 50, 40 and 30 minutes ago: the slots free in 10, 20
    # and 30 minutes. Five shops that find the budget spent are each promised a slot of their
    # own, a window later once every slot is promised; not all the same moment, when all
    # but three would find it spent again.
    settings.ACME_RATE_LIMIT_NEW_ORDERS = "3/1h"
    now = timezone.now()
    taken = [now - timedelta(minutes=minutes) for minutes in (50, 40, 30)]
    for moment in taken:
        spend(Need(Budget.NEW_ORDERS, ""), count=1, at=moment)
    channels = [
        make_verified_channel(
            acme, name=f"Shop {n}", hostname=f"shop.c{n}.example", ssl_mode="managed"
        )
        for n in range(5)
    ]
    for channel in channels:
        assert issue(channel) is None
    hour = timedelta(hours=1)
    expected = [taken[0] + hour, taken[1] + hour, taken[2] + hour, taken[0] + 2 * hour]
    expected.append(taken[1] + 2 * hour)
    for channel, frees_at in zip(channels, expected, strict=True):
        channel.refresh_from_db()
        assert channel.status == ChannelStatus.QUEUED
        assert channel.renewal_next_attempt_at == frees_at
    assert not AcmeOrder.objects.exists()


def test_a_first_order_that_must_wait_is_queued_before_the_preflight(
    offline_ca, channel, settings, monkeypatch
):
    # The pre-flight's DNS and HTTP work is spent only on an order that can be placed.
    checked = []
    monkeypatch.setattr(
        services, "preflight_pass", lambda channel, claim: checked.append(channel) or True
    )
    settings.ACME_RATE_LIMIT_NEW_ORDERS = "1/1h"
    spend(Need(Budget.NEW_ORDERS, ""), count=1, at=timezone.now())
    assert issue(channel) is None
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.QUEUED
    assert checked == []
