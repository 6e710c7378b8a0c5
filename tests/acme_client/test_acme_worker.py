"""`manage.py acme_worker`: one process runs many ACME orders at once (README, "Workers and
concurrency"), against the real moving parts.

A manager switches twelve channels to *Managed* on their SSL pages; the web process queues
each issuance on the "acme" queue (settings.CELERY_TASK_ROUTES). The general worker (with beat)
consumes only the "celery" queue, the ACME worker only "acme", with a pool of 8 threads. Pebble
validates HTTP-01 against the live application; nginx serves what the worker deploys.

The test proves that the orders ran in one process, several at once (their intervals in the
database overlap), that each channel got exactly one order and one certificate (claims are
still conditional updates), and that no issuance ran in the general worker.
"""

import os

import pytest
from django.urls import reverse

from acme_client.models import AcmeOrder
from certificates.models import Certificate
from saleschannels.models import SalesChannel
from saleschannels.probe import ProbeError, certificate_fingerprint
from tests.celery_worker import acme_worker_run, broker, celery_worker_run, worker_env
from tests.nginx import served_certificate
from tests.pebble import pebble_run
from tests.redis import redis_run

from .test_worker_pebble import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CHANNELS = 12
THREADS = 8


def orders_at_once(intervals: list[tuple]) -> int:
    """The largest number of orders in flight at the same moment."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda event: (event[0], event[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_orders_unit():
    # The measure itself: [0, 2) and [1, 3) overlap, [3, 4) starts as [1, 3) ends.
    assert orders_at_once([(0, 2), (1, 3), (3, 4)]) == 2
    assert orders_at_once([(0, 1), (1, 2)]) == 1


def test_one_acme_worker_process_runs_many_orders_at_once(
    live_server, tmp_path, settings, nginx_edge, client, alice, acme, make_verified_channel
):
    port = int(live_server.url.rsplit(":", 1)[1])
    channels = [
        make_verified_channel(acme, name=f"shop {index}", hostname=f"shop{index}.many.test")
        for index in range(CHANNELS)
    ]
    with (
        pebble_run(workdir=tmp_path / "pebble", http_port=port) as pebble,
        redis_run(workdir=tmp_path / "redis") as redis,
    ):
        settings.ACME_DIRECTORY_URL = pebble.directory_url
        settings.ACME_CA_BUNDLE = str(pebble.ca_bundle)
        env = {
            **worker_env(tmp_path=tmp_path, broker_url=redis.url, pebble=pebble, http_port=port),
            "CERTMGR_EDGE_DIR": str(nginx_edge.edge_dir),
            "CERTMGR_PROBE_ADDRESS": nginx_edge.address,
            "ACME_ORDER_TIMEOUT": "60",
            "CERTMGR_ACME_CONCURRENCY": str(THREADS),
        }
        with (
            broker(redis.url),
            celery_worker_run(
                env=env, workdir=tmp_path / "worker", beat=True, queues=["celery"]
            ) as general,
            acme_worker_run(env=env, workdir=tmp_path / "acme-worker") as acme_worker,
        ):
            client.force_login(alice)
            for channel in channels:
                response = client.post(
                    reverse("channel_ssl", args=[channel.pk]), {"mode": "managed"}
                )
                assert response.status_code == 302
            wait_for(
                lambda: (
                    SalesChannel.objects.filter(
                        active_certificate__source=Certificate.Source.MANAGED
                    ).count()
                    == CHANNELS
                ),
                timeout=180,
                what=f"{CHANNELS} certificates\n{acme_worker.log_tail()}",
            )
            # Each channel's certificate is the one nginx serves (deployed after the switch).
            for channel in channels:
                channel.refresh_from_db()
                wait_for(
                    lambda channel=channel: (
                        served_fingerprint(nginx_edge.address, channel.hostname)
                        == channel.active_certificate.fingerprint_sha256
                    ),
                    what=f"nginx to serve {channel.hostname}'s certificate",
                )
            # One process: Celery's thread pool has no pool children.
            children = list(_children(acme_worker.pid))
            assert children == [], children
            acme_log = acme_worker.log()
            general_log = general.log()

    assert f"concurrency: {THREADS} (thread)" in acme_log
    assert acme_log.count("Task acme_client.tasks.issue_certificate[") >= CHANNELS
    assert "Task acme_client.tasks.issue_certificate[" not in general_log
    orders = AcmeOrder.objects.filter(channel__in=channels)
    assert orders.count() == CHANNELS
    assert sorted(orders.values_list("channel_id", flat=True)) == sorted(c.pk for c in channels)
    assert pebble.orders_count() == CHANNELS
    intervals = list(orders.values_list("created_at", "finished_at"))
    assert all(end is not None for _, end in intervals)
    assert orders_at_once(intervals) > 1, intervals


def served_fingerprint(address: str, hostname: str) -> str | None:
    """What nginx serves for `hostname`, None while it has nothing for it (the database is
    switched before the edge files are written, so a handshake in between finds none)."""
    try:
        return certificate_fingerprint(served_certificate(address, hostname))
    except ProbeError:
        return None


def _children(pid: int):
    """The pids whose parent is `pid` (Linux /proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            yield int(entry)
