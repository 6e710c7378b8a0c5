"""What a real CA may answer besides success, through a fault-injecting proxy in front of
Pebble (Pebble 2.4 has no rate limits, Retry-After or ARI of its own): the client waits as
asked, retries rejected nonces, and plans renewal in the CA's suggested window. The
channel's hostname is verified and the real pre-flight runs before each order."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from acme_client.models import AcmeOrder
from saleschannels.findings import Check, Finding, Reason
from saleschannels.models import ChannelStatus
from tests.acme_client.issuing import issue

pytestmark = pytest.mark.django_db(transaction=True)

RATE_LIMITED = {
    "type": "urn:ietf:params:acme:error:rateLimited",
    "detail": "too many new orders recently",
}
BAD_NONCE = {
    "type": "urn:ietf:params:acme:error:badNonce",
    "detail": "JWS has an invalid anti-replay nonce",
}
SERVER_ERROR = {"type": "urn:ietf:params:acme:error:serverInternal", "detail": "try again later"}


@pytest.fixture
def channel(acme, make_verified_channel):
    return make_verified_channel(acme, name="Main", hostname="shop.acme.test", ssl_mode="managed")


def statuses(proxy, path: str) -> list[int]:
    """Statuses of the POSTs to `path`, in order."""
    return [status for method, url, status in proxy.requests if path in url and method == "POST"]


def without_pebble_nonce_rejections(seen: list[int], *, injected: int) -> list[int]:
    """Drop 400s beyond the `injected` ones: Pebble rejects 5 % of nonces on its own."""
    kept, rejected = [], 0
    for status in seen:
        if status == 400:
            rejected += 1
            if rejected > injected:
                continue
        kept.append(status)
    return kept


def test_a_429_is_retried_after_the_time_the_ca_asks_for(proxy, channel):
    proxy.fail_next("order-plz", 429, RATE_LIMITED, retry_after=1, method="POST")
    started = time.monotonic()
    assert issue(channel) is not None
    assert time.monotonic() - started >= 1
    assert without_pebble_nonce_rejections(statuses(proxy, "order-plz"), injected=0) == [429, 201]


def test_a_server_error_with_retry_after_is_retried(proxy, channel):
    proxy.fail_next("finalize", 503, SERVER_ERROR, retry_after=1, method="POST")
    assert issue(channel) is not None
    assert without_pebble_nonce_rejections(statuses(proxy, "finalize"), injected=0)[:2] == [
        503,
        200,
    ]


def test_a_burst_of_rejected_nonces_is_retried(proxy, channel):
    proxy.fail_next("order-plz", 400, BAD_NONCE, times=4, method="POST")
    assert issue(channel) is not None
    seen = statuses(proxy, "order-plz")
    assert seen[:4] == [400, 400, 400, 400]
    assert without_pebble_nonce_rejections(seen, injected=4) == [400, 400, 400, 400, 201]
    assert AcmeOrder.objects.count() == 1


def test_a_wait_longer_than_the_deadline_is_a_recorded_failure(proxy, channel, settings):
    # A CA that is down for longer than the order may take. (A rate limit is no failure: the
    # channel is queued instead, tests/acme_client/test_budgets_pebble.py.)
    settings.ACME_ORDER_TIMEOUT = 5
    proxy.fail_next("order-plz", 503, SERVER_ERROR, retry_after=3600, method="POST")
    assert issue(channel) is None
    channel.refresh_from_db()
    assert "asked to wait 3600 s" in channel.renewal_last_error
    assert channel.renewal_failures == 1
    # Said as what the CA answered.
    down = Finding(Check.ACME, Reason.ACME_SERVER_INTERNAL, {"ca": "Pebble (test CA)"})
    assert channel.status == ChannelStatus.ISSUANCE_FAILING
    assert (channel.status_reason, channel.status_params) == ("acme_server_internal", down.params)
    assert AcmeOrder.objects.get().error == down.words
    # Not tried again before the CA allows.
    assert channel.renewal_next_attempt_at >= timezone.now() + timedelta(seconds=3590)


def test_renewal_is_planned_in_the_window_ari_suggests(proxy, channel):
    start = timezone.now() + timedelta(days=20)
    end = start + timedelta(days=2)
    proxy.renewal_info(start=start, end=end)
    certificate = issue(channel)
    channel.refresh_from_db()
    assert start <= channel.renewal_due_at <= end
    # Without ARI the rule would have said 2/3 of the lifetime, far later.
    lifetime = certificate.not_after - certificate.not_before
    assert channel.renewal_due_at < certificate.not_before + lifetime * 2 / 3
