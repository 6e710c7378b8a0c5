"""The CA's rate limits through the fault proxy in front of a real Pebble (README, "Rate
limits (the CA's budgets)"): a 429 "rateLimited" with Retry-After holds the budget it was
about for every channel and no newOrder is sent before it ends; a renewal that names the
certificate it replaces (RFC 9773) is placed while the new-order budget is spent, and one the
CA refuses `replaces` for takes the budget like any order. The channels' hostnames are
verified and the real pre-flight runs before each order."""

from datetime import timedelta

import pytest
from django.utils import timezone

from acme_client import services
from acme_client.limits import Budget
from acme_client.models import AcmeOrder, BudgetHold
from saleschannels.findings import Reason
from saleschannels.models import ChannelStatus, SalesChannel, channels_needing_action
from tests.acme_client.issuing import issue
from tests.acme_client.test_ari import ALREADY_REPLACED, ari_id, far_window, orders_sent

pytestmark = pytest.mark.django_db(transaction=True)

TOO_MANY_ORDERS = {
    "type": "urn:ietf:params:acme:error:rateLimited",
    "detail": "too many new orders (300) from this account in the last 3h0m0s",
}
TOO_MANY_FOR_THE_DOMAIN = {
    "type": "urn:ietf:params:acme:error:rateLimited",
    "detail": 'too many certificates (50) already issued for "acme.test" in the last 168h0m0s',
}


@pytest.fixture
def channel(acme, make_verified_channel):
    return make_verified_channel(acme, name="Main", hostname="shop.acme.test", ssl_mode="managed")


@pytest.fixture
def other(acme, make_verified_channel):
    return make_verified_channel(acme, name="Box", hostname="box.acme.test", ssl_mode="managed")


def queued_by(channel, reason: Reason) -> bool:
    channel.refresh_from_db()
    return (channel.status, channel.status_reason) == (ChannelStatus.QUEUED, reason)


def run_due() -> list:
    """renew_due, each queued issuance run at once; what each returned."""
    results = []
    services.channels_renew_due(
        queue=lambda channel_id, claim: results.append(
            services.channel_certificate_issue(channel_id=channel_id, claim=claim)
        )
    )
    return results


def test_a_rate_limit_holds_every_order_until_retry_after(proxy, channel, other, alice):
    proxy.fail_next("order-plz", 429, TOO_MANY_ORDERS, retry_after=3600, method="POST")
    before = timezone.now()
    assert issue(channel) is None

    # The platform's limit, not the tenant's failure.
    assert queued_by(channel, Reason.CA_BUDGET_ORDERS)
    assert channel.renewal_failures == 0
    assert not channels_needing_action(alice).exists()
    hold = BudgetHold.objects.get()
    assert (hold.budget, hold.key) == (Budget.NEW_ORDERS, "")
    assert before + timedelta(seconds=3600) <= hold.until <= timezone.now() + timedelta(hours=1)
    assert channel.renewal_next_attempt_at == hold.until
    assert AcmeOrder.objects.get().status == AcmeOrder.Status.FAILED
    assert len(proxy.new_orders) == 1

    # Before it ends nothing reaches the CA: renew_due picks up only the other shop of the
    # account (due, never ordered for), which is queued as well; asked anyway (Renew now),
    # the channel stays queued.
    assert run_due() == [None]
    assert issue(channel) is None
    assert queued_by(channel, Reason.CA_BUDGET_ORDERS)
    assert queued_by(other, Reason.CA_BUDGET_ORDERS)
    assert other.renewal_next_attempt_at == hold.until
    assert len(proxy.new_orders) == 1
    assert AcmeOrder.objects.count() == 1

    # Once it ends (moved into the past here), renew_due orders both.
    ended = timezone.now() - timedelta(seconds=1)
    BudgetHold.objects.update(until=ended)
    SalesChannel.objects.update(renewal_next_attempt_at=ended)
    issued = run_due()
    assert len(issued) == 2 and all(issued)
    for shop in (channel, other):
        shop.refresh_from_db()
        assert shop.status == ChannelStatus.ACTIVE
    assert channel.renewal_failures == 0


def test_a_rate_limit_naming_the_domain_holds_that_domain_only(
    proxy, channel, acme, make_verified_channel
):
    proxy.fail_next("order-plz", 429, TOO_MANY_FOR_THE_DOMAIN, retry_after=3600, method="POST")
    assert issue(channel) is None
    assert queued_by(channel, Reason.CA_BUDGET_DOMAIN)
    assert channel.status_params["domain"] == "acme.test"
    hold = BudgetHold.objects.get()
    assert (hold.budget, hold.key) == (Budget.REGISTERED_DOMAIN, "acme.test")

    sibling = make_verified_channel(acme, name="Box", hostname="box.acme.test", ssl_mode="managed")
    assert issue(sibling) is None
    assert queued_by(sibling, Reason.CA_BUDGET_DOMAIN)
    elsewhere = make_verified_channel(
        acme, name="Opera", hostname="tickets.opera.test", ssl_mode="managed"
    )
    assert issue(elsewhere) is not None
    assert len(proxy.new_orders) == 2


def test_a_renewal_naming_what_it_replaces_is_placed_while_the_budget_is_spent(
    proxy, channel, other, settings
):
    settings.ACME_RATE_LIMIT_NEW_ORDERS = "1/3h"
    proxy.renewal_info(start=far_window()[0], end=far_window()[1])
    first = issue(channel)  # the account's one new order
    assert first is not None

    assert issue(other) is None
    assert queued_by(other, Reason.CA_BUDGET_ORDERS)
    assert len(orders_sent(proxy)) == 1

    renewed = issue(channel)  # exempt: it names the certificate it replaces
    assert renewed is not None and renewed.replaces_id == first.pk
    assert orders_sent(proxy)[-1]["replaces"] == ari_id(first.certificate_pem)
    assert len(orders_sent(proxy)) == 2
    assert queued_by(other, Reason.CA_BUDGET_ORDERS)

    # The CA refuses `replaces`: asked again without it, the order is not exempt any more,
    # and with the budget spent it is not placed again.
    proxy.fail_next("order-plz", 409, ALREADY_REPLACED, method="POST", payload_has="replaces")
    assert issue(channel) is None
    assert proxy.faults_pending() == 0
    assert [payload.get("replaces") for payload in orders_sent(proxy)][-1] == ari_id(
        renewed.certificate_pem
    )
    assert queued_by(channel, Reason.CA_BUDGET_ORDERS)
    assert channel.renewal_failures == 0
    refused = AcmeOrder.objects.order_by("-pk").first()
    assert refused.status == AcmeOrder.Status.FAILED and refused.replaces == ""
    assert refused.error.startswith("Queued: the platform's budget of new orders")
