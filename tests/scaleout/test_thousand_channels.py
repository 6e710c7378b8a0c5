"""A thousand shops switched to *Managed* at once, with the CA's budgets scaled down (README,
"Rate limits (the CA's budgets)" and "Workers and concurrency").

A real Pebble (behind tests/acme_fault_proxy.py, which only keeps Pebble's own lock bug from
hanging the run) validates HTTP-01 against the live application; a general worker with beat
(renew_due every second) and the ACME worker (its default 16 threads) share the test database.
1,000 channels, each shop on a domain of its own with its hostname verified, are switched to
*Managed* through the SSL page's service, one after the other, as fast as that goes. The
new-orders budget is 100 per 20 s (1 s margin), so the platform must spread the orders over
at least ten windows.

The test proves that
- every channel ends with a managed certificate, one valid order each;
- the budget was kept in every window, read from Pebble's own log: no 101 orders within any
  20 seconds (Pebble logs whole seconds, so orders 19 logged seconds apart are under 20 s
  apart: that is the window checked);
- the budget did bind (orders were deferred) and no channel was ever shown as failing:
  no failure counted, no "renewal failed" recorded, no failing status ever set.

Slow (several minutes): marked `slow`, still part of `make test`. It prints how long it took.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest
from django.utils import timezone

from acme_client.models import AcmeOrder
from acme_client.scheduling import channel_ssl_mode_choose
from certificates.models import Certificate
from core.models import AuditEvent
from saleschannels.models import ChannelStatus, SalesChannel, VerificationMethod
from tests.acme_fault_proxy import acme_fault_proxy_run
from tests.celery_worker import acme_worker_run, broker, celery_worker_run, worker_env
from tests.pebble import pebble_run
from tests.redis import redis_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHANNELS = 1000
ORDERS_PER_WINDOW = 100
WINDOW_SECONDS = 20
TIMEOUT = 1200.0
PEBBLE_ORDER = re.compile(
    r"^Pebble (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) There are now \d+ orders in the db", re.M
)


def most_orders_in_a_window(moments: list[datetime], *, seconds: int) -> int:
    """The most orders whose logged (whole-second) times lie within `seconds - 1` of each
    other, i.e. surely less than `seconds` apart."""
    moments = sorted(moments)
    most, start = 0, 0
    for end, moment in enumerate(moments):
        while (moment - moments[start]).total_seconds() > seconds - 1:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_the_window_measure():
    t = [datetime(2026, 1, 1, 0, 0, s) for s in (0, 5, 19, 20, 39)]
    assert most_orders_in_a_window(t, seconds=20) == 3  # 0, 5, 19
    assert most_orders_in_a_window(t[3:], seconds=20) == 2  # 20, 39


def test_a_thousand_channels_switched_at_once_keep_the_budget(
    live_server, tmp_path, settings, acme, alice, capsys
):
    port = int(live_server.url.rsplit(":", 1)[1])
    now = timezone.now()
    SalesChannel.objects.bulk_create(
        SalesChannel(
            institution=acme,
            name=f"Shop {index}",
            hostname=f"shop.c{index}.test",
            hostname_verified_at=now,
            hostname_verified_by=VerificationMethod.STAFF,
        )
        for index in range(CHANNELS)
    )
    limits = {
        "ACME_RATE_LIMIT_NEW_ORDERS": f"{ORDERS_PER_WINDOW}/{WINDOW_SECONDS}s",
        "ACME_RATE_LIMIT_MARGIN": "1",
    }
    for name, value in limits.items():
        setattr(settings, name, value if name != "ACME_RATE_LIMIT_MARGIN" else 1.0)
    with (
        pebble_run(workdir=tmp_path / "pebble", http_port=port) as pebble,
        # Only so that Pebble's own lock bug cannot hang the run (tests/acme_fault_proxy.py,
        # pebble_deadlock_guard): it injects no fault.
        acme_fault_proxy_run(
            upstream=pebble, workdir=tmp_path / "proxy", pebble_deadlock_guard=True
        ) as proxy,
        redis_run(workdir=tmp_path / "redis") as redis,
    ):
        settings.ACME_DIRECTORY_URL = proxy.directory_url
        settings.ACME_CA_BUNDLE = str(proxy.ca_bundle)
        env = {
            **worker_env(tmp_path=tmp_path, broker_url=redis.url, pebble=pebble, http_port=port),
            "ACME_DIRECTORY_URL": proxy.directory_url,
            "ACME_CA_BUNDLE": str(proxy.ca_bundle),
            "ACME_ORDER_TIMEOUT": "120",
            "CERTMGR_RENEW_INTERVAL": "1",
            **limits,
        }
        with (
            broker(redis.url),
            celery_worker_run(env=env, workdir=tmp_path / "worker", beat=True, queues=["celery"]),
            acme_worker_run(env=env, workdir=tmp_path / "acme-worker") as acme_worker,
        ):
            started = time.monotonic()
            for channel in SalesChannel.objects.select_related("institution").order_by("pk"):
                channel_ssl_mode_choose(
                    channel=channel, mode=SalesChannel.SslMode.MANAGED, actor=alice
                )
            switched = time.monotonic() - started
            managed = SalesChannel.objects.filter(
                active_certificate__source=Certificate.Source.MANAGED
            )
            deadline = started + TIMEOUT
            while managed.count() < CHANNELS and time.monotonic() < deadline:
                time.sleep(1.0)
            took = time.monotonic() - started
            issued = managed.count()
            acme_log = acme_worker.log()
        pebble_log = pebble.log()

    with capsys.disabled():
        print(
            f"\n{CHANNELS} channels switched to managed in {switched:.1f} s; "
            f"{issued} certificates issued {took:.1f} s after the first switch "
            f"({ORDERS_PER_WINDOW} new orders per {WINDOW_SECONDS} s); "
            f"{acme_log.count('no order, the ')} orders deferred"
        )
    assert issued == CHANNELS, acme_log[-4000:]
    valid = AcmeOrder.objects.filter(status=AcmeOrder.Status.VALID)
    assert valid.count() == CHANNELS
    assert valid.values("channel").distinct().count() == CHANNELS

    moments = [
        datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S") for stamp in PEBBLE_ORDER.findall(pebble_log)
    ]
    assert len(moments) >= CHANNELS
    assert most_orders_in_a_window(moments, seconds=WINDOW_SECONDS) <= ORDERS_PER_WINDOW
    # The budget did bind: orders waited, queued.
    assert "no order, the new_orders budget" in acme_log
    # Never a failure for the tenant.
    assert not SalesChannel.objects.filter(renewal_failures__gt=0).exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CHANNEL_RENEWAL_FAILED).exists()
    assert not SalesChannel.objects.exclude(status=ChannelStatus.ACTIVE).exists()
    failing = (ChannelStatus.ISSUANCE_FAILING, ChannelStatus.RENEWAL_FAILING)
    assert not re.search(rf"status \w+ -> ({'|'.join(failing)})", acme_log)
