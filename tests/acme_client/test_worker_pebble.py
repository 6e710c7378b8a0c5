"""Managed certificates through the real moving parts: a Celery worker process (with beat)
on a real Redis, a real Pebble validating HTTP-01 against the live application, and a real
nginx serving what the worker deployed.

The worker is another process, so it shares the test database through its file (SQLite) or
server (PostgreSQL), hence transactional tests. It runs the real pre-flight before each order:
DNS and CAA asked of Pebble's DNS server, the HTTP-01 self-check fetched from the live app,
as the environment tells it (tests/conftest.py's `pebble` fixture does the same in-process).
"""

import re
import threading
import time
from contextlib import contextmanager
from signal import SIGKILL

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from acme_client import tasks, views
from acme_client.models import AcmeOrder
from certificates.models import Certificate
from saleschannels.models import SalesChannel
from saleschannels.probe import ProbeError, certificate_fingerprint
from tests.celery_worker import broker, celery_worker_run, database_url
from tests.nginx import served_certificate
from tests.pebble import pebble_run
from tests.redis import redis_run

pytestmark = pytest.mark.django_db(transaction=True)

HOSTNAME = "shop.acme.test"


def wait_for(condition, *, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def managed_certificate(channel_id: int, *, other_than=None):
    channel = SalesChannel.objects.select_related("active_certificate").get(pk=channel_id)
    active = channel.active_certificate
    if active and active.source == Certificate.Source.MANAGED and active.pk != other_than:
        return active
    return None


def preflight_env(pebble, http_port: int) -> dict[str, str]:
    """What a worker needs for its pre-flight to see what Pebble sees: Pebble's DNS server,
    127.0.0.1 as the edge's address, and the port Pebble validates HTTP-01 on."""
    return {
        "CERTMGR_DNS_RESOLVERS": pebble.dns.dns_address,
        "CERTMGR_EDGE_ADDRESSES": "127.0.0.1",
        "ACME_HTTP01_PORT": str(http_port),
    }


@pytest.fixture
def stack(live_server, tmp_path, settings, nginx_edge):
    """Pebble + Redis + a worker with beat, all pointed at the live app and the nginx edge."""
    port = int(live_server.url.rsplit(":", 1)[1])

    @contextmanager
    def run(*, validity_seconds=None, renew_interval=1.0, concurrency=2):
        with (
            pebble_run(
                workdir=tmp_path / "pebble", http_port=port, validity_seconds=validity_seconds
            ) as pebble,
            redis_run(workdir=tmp_path / "redis") as redis,
        ):
            settings.ACME_DIRECTORY_URL = pebble.directory_url
            settings.ACME_CA_BUNDLE = str(pebble.ca_bundle)
            env = {
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": redis.url,
                "CELERY_VISIBILITY_TIMEOUT": "5",
                "CERTMGR_VAR_DIR": str(tmp_path / "worker-var"),
                "SECRET_KEY": django_settings.SECRET_KEY,
                "CERTMGR_ENCRYPTION_KEYS": ",".join(django_settings.CERTMGR_ENCRYPTION_KEYS),
                "CERTMGR_EDGE_DIR": str(nginx_edge.edge_dir),
                "ACME_DIRECTORY_URL": pebble.directory_url,
                "ACME_CA_BUNDLE": str(pebble.ca_bundle),
                "ACME_ORDER_TIMEOUT": "30",
                "CERTMGR_RENEW_INTERVAL": str(renew_interval),
                **preflight_env(pebble, port),
            }
            with (
                broker(redis.url),
                celery_worker_run(
                    env=env, workdir=tmp_path / "worker", beat=True, concurrency=concurrency
                ) as worker,
            ):
                yield pebble, worker

    return run


@pytest.fixture
def channel(acme, make_verified_channel):
    return make_verified_channel(acme, name="Main shop", hostname=HOSTNAME)


def test_switching_to_managed_ends_with_a_served_pebble_certificate(
    stack, client, alice, channel, nginx_edge
):
    with stack() as (pebble, worker):
        client.force_login(alice)
        client.post(reverse("channel_ssl", args=[channel.pk]), {"mode": "managed"})
        certificate = wait_for(
            lambda: managed_certificate(channel.pk), what=f"a certificate\n{worker.log_tail()}"
        )
        served = wait_for(
            lambda: _served_fingerprint(nginx_edge) == certificate.fingerprint_sha256,
            what="nginx to serve it",
        )
        assert served
        assert AcmeOrder.objects.filter(channel=channel).count() == 1
        assert pebble.orders_count() == 1


def _served_fingerprint(nginx_edge) -> str | None:
    try:
        return certificate_fingerprint(served_certificate(nginx_edge.address, HOSTNAME))
    except ProbeError:
        return None


def test_beat_renews_a_short_lived_certificate_without_an_outage(
    stack, client, alice, channel, nginx_edge
):
    # 20-second certificates: renewal is due at half their lifetime, and beat looks every second.
    with stack(validity_seconds=20) as (pebble, worker):
        client.force_login(alice)
        client.post(reverse("channel_ssl", args=[channel.pk]), {"mode": "managed"})
        first = wait_for(lambda: managed_certificate(channel.pk), what="the first certificate")
        wait_for(lambda: _served_fingerprint(nginx_edge) == first.fingerprint_sha256, what="served")

        seen, failures, stop = [], [], threading.Event()

        def handshake_continuously():
            while not stop.is_set():
                try:
                    seen.append(
                        certificate_fingerprint(served_certificate(nginx_edge.address, HOSTNAME))
                    )
                except ProbeError as error:
                    failures.append(str(error))
                time.sleep(0.025)

        prober = threading.Thread(target=handshake_continuously)
        prober.start()
        try:
            second = wait_for(
                lambda: managed_certificate(channel.pk, other_than=first.pk),
                timeout=60,
                what=f"the renewal\n{worker.log_tail()}",
            )
            wait_for(lambda: second.fingerprint_sha256 in seen, what="the renewal to be served")
        finally:
            stop.set()
            prober.join()

        assert second.replaces_id == first.pk
        # nginx opens the .crt and the .key of a handshake separately, so one handshake whose
        # two opens straddle the swap can pair the old certificate with the new key (README,
        # "Edge and probe"); polling every 25 ms, at most one can.
        assert len(failures) <= 1, failures
        assert len(seen) > 50
        assert seen[0] == first.fingerprint_sha256 and seen[-1] == second.fingerprint_sha256


# Celery's INFO line when a worker takes a task off the queue; the id stays the same when
# the broker delivers an unacknowledged task again.
ISSUE_RECEIVED = re.compile(r"Task acme_client\.tasks\.issue_certificate\[([0-9a-f-]+)\] received")


def test_a_worker_killed_during_issuance_leaves_exactly_one_active_certificate(
    stack, client, alice, channel, monkeypatch
):
    # The application holds Pebble's first HTTP-01 fetch until the worker has been killed:
    # the worker waits for Pebble and Pebble for this answer, so the order cannot complete
    # before the kill, whatever the machine's speed. The worker's pre-flight self-check comes
    # before the order is recorded, and is answered at once.
    first_fetch, released, lock = threading.Event(), threading.Event(), threading.Lock()
    answer = views.challenge_answer

    def held_answer(**kwargs):
        if not AcmeOrder.objects.filter(channel=channel).exists():
            return answer(**kwargs)
        with lock:
            hold = not first_fetch.is_set()
            first_fetch.set()
        if hold:
            released.wait(60)
        return answer(**kwargs)

    monkeypatch.setattr(views, "challenge_answer", held_answer)
    with stack(renew_interval=3600) as (pebble, worker):
        client.force_login(alice)
        try:
            client.post(reverse("channel_ssl", args=[channel.pk]), {"mode": "managed"})
            assert first_fetch.wait(60), f"Pebble never fetched the challenge\n{worker.log_tail()}"
            # The moment of the kill: an order started and not finished, no certificate yet.
            killed_order = AcmeOrder.objects.get(channel=channel)
            assert killed_order.status == AcmeOrder.Status.PENDING
            assert killed_order.finished_at is None
            channel.refresh_from_db()
            assert channel.active_certificate is None and channel.renewal_claim
            assert not Certificate.objects.filter(source=Certificate.Source.MANAGED).exists()
            [task_id] = ISSUE_RECEIVED.findall(worker.log())
            worker.kill(SIGKILL)
        finally:
            released.set()
        worker.restart()
        # acks_late: the unacknowledged task comes back (visibility timeout) and runs again.
        certificate = wait_for(
            lambda: managed_certificate(channel.pk),
            timeout=90,
            what=f"the certificate after the crash\n{worker.log_tail()}",
        )
        # The same task, delivered a second time to the restarted worker, placed a new order.
        assert ISSUE_RECEIVED.findall(worker.log()) == [task_id, task_id]
        orders = list(AcmeOrder.objects.filter(channel=channel).order_by("pk"))
        assert len(orders) == 2 and orders[0].pk == killed_order.pk
        assert orders[0].certificate is None
        assert orders[1].status == AcmeOrder.Status.VALID and orders[1].certificate == certificate
        assert Certificate.objects.filter(source=Certificate.Source.MANAGED).count() == 1
        channel.refresh_from_db()
        assert channel.active_certificate == certificate and not channel.renewal_claim


def test_two_renew_due_runs_at_once_order_once_per_channel(stack, acme, make_verified_channel):
    channels = [
        make_verified_channel(
            acme, name=f"shop {i}", hostname=f"shop{i}.acme.test", ssl_mode="managed"
        )
        for i in range(4)
    ]
    with stack(renew_interval=3600, concurrency=4) as (pebble, worker):
        tasks.renew_due.delay()
        tasks.renew_due.delay()
        for channel in channels:
            wait_for(
                lambda channel=channel: managed_certificate(channel.pk),
                what=f"{channel.hostname}\n{worker.log_tail()}",
            )
        assert AcmeOrder.objects.count() == len(channels)
        assert pebble.orders_count() == len(channels)
