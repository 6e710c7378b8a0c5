"""Managed certificates through the real moving parts: a Celery worker process (with beat)
on a real Redis, a real Pebble validating HTTP-01 against the live application, and a real
nginx serving what the worker deployed.

The worker is another process, so it shares the test database through its file (SQLite) or
server (PostgreSQL), hence transactional tests. It runs the real pre-flight before each order:
DNS and CAA asked of Pebble's DNS server, the HTTP-01 self-check fetched from the live app,
as the environment tells it (tests/conftest.py's `pebble` fixture does the same in-process).
"""

import hashlib
import re
import socket
import ssl
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime
from signal import SIGKILL

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings as django_settings
from django.urls import reverse

from acme_client import tasks, views
from acme_client.models import AcmeOrder
from certificates.models import Certificate
from certificates.renewal import renewal_window
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
    def run(*, validity_seconds=None, renew_interval=1.0, concurrency=2, extra_env=None):
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
                **(extra_env or {}),
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
    # 20-second certificates: renewal is due by half their lifetime, and beat looks every second.
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
        # The renewal kept the key (ACME_REUSE_KEY), so only the .crt was swapped: nginx's
        # two opens of a handshake always find a matching pair (README, "Edge and probe").
        assert failures == []
        assert _public_key(second) == _public_key(first)
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


def _public_key(certificate) -> bytes:
    leaf = x509.load_pem_x509_certificate(certificate.certificate_pem.encode())
    return leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


# The compressed short-lived run: 20-second certificates, 20 channels at once, beat every
# second, handshakes through nginx to every hostname for ten full lifetimes.
RUN_CHANNELS = 20
RUN_LIFETIME = 20  # seconds (Pebble's certificateValidityPeriod)
RUN_LIFETIMES = 10
RUN_CLIENTS = 2
PAUSE = 0.05  # seconds between two handshakes of one client (about 30 a second in all)


class HandshakeRecorder:
    """Client threads handshaking with SNI to every hostname in turn, PAUSE apart; each
    handshake is recorded as (time after it, hostname, served leaf's DER digest) or failure."""

    def __init__(self, address: str, hostnames: list[str]):
        host, _, port = address.rpartition(":")
        self.target = (host, int(port))
        self.hostnames = hostnames
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.served, self.failures, self.leaves = [], [], {}
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(offset,)) for offset in range(RUN_CLIENTS)
        ]

    def _run(self, offset: int) -> None:
        index = offset
        while not self.stop.is_set():
            hostname = self.hostnames[index % len(self.hostnames)]
            index += 1
            try:
                with (
                    socket.create_connection(self.target, timeout=5) as raw,
                    self.context.wrap_socket(raw, server_hostname=hostname) as tls,
                ):
                    der = tls.getpeercert(binary_form=True)
            except OSError as error:  # ssl.SSLError included
                self.failures.append((time.time(), hostname, str(error)))
                continue
            digest = hashlib.sha256(der).hexdigest()
            self.leaves.setdefault(digest, der)
            self.served.append((time.time(), hostname, digest))
            # A short breath: the worker shares the machine's two cores with these clients.
            time.sleep(PAUSE)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def not_after(self, digest: str) -> datetime:
        return x509.load_der_x509_certificate(self.leaves[digest]).not_valid_after_utc


@pytest.mark.slow
def test_ten_lifetimes_of_20_second_certificates_on_20_channels(
    stack, acme, make_verified_channel, nginx_edge
):
    hostnames = [f"shop{i}.acme.test" for i in range(RUN_CHANNELS)]
    channels = [
        make_verified_channel(acme, name=hostname, hostname=hostname, ssl_mode="managed")
        for hostname in hostnames
    ]
    # Pebble has no rate limits and no ARI, so these renewals cannot name what they replace
    # and are not exempt from the CA's budgets: some 25 renewals per name would spend the
    # duplicate-certificate budget (5 per 7 days) at the fifth. Off here, as Pebble's are;
    # README, "Rate limits (the CA's budgets)" (a real short-lived profile renews with ARI).
    budgets_off = {
        f"ACME_RATE_LIMIT_{name}": "off"
        for name in ("NEW_ORDERS", "REGISTERED_DOMAIN", "DUPLICATE", "FAILED_VALIDATIONS")
    }
    with stack(
        validity_seconds=RUN_LIFETIME, renew_interval=1.0, concurrency=8, extra_env=budgets_off
    ) as (_, worker):
        for channel in channels:
            wait_for(
                lambda channel=channel: managed_certificate(channel.pk),
                what=f"{channel.hostname}'s first certificate\n{worker.log_tail()}",
            )
        planned = {}  # certificate id -> the renewal moment planned for it
        with HandshakeRecorder(nginx_edge.address, hostnames) as recorder:
            started = time.time()
            while time.time() < started + RUN_LIFETIME * RUN_LIFETIMES:
                rows = SalesChannel.objects.filter(pk__in=[c.pk for c in channels])
                for certificate_id, due in rows.values_list(
                    "active_certificate_id", "renewal_due_at"
                ):
                    if due is not None:
                        planned.setdefault(certificate_id, due)
                time.sleep(0.5)
        ended = time.time()

    # 0 failed handshakes, and many of them to every hostname. (An issuance waits on Pebble's
    # validation most of its time, hence 8 worker processes for ~2 renewals a second.)
    assert recorder.failures == [], recorder.failures[:5]
    per_host = Counter(hostname for _, hostname, _ in recorder.served)
    assert set(per_host) == set(hostnames) and min(per_host.values()) > 50, per_host
    # Never an expired certificate served: each leaf's notAfter is after the moment its
    # handshake had completed.
    expired = [
        (hostname, at)
        for at, hostname, digest in recorder.served
        if recorder.not_after(digest).timestamp() <= at
    ]
    assert expired == [], expired[:5]

    # Every certificate that lived out during the run was renewed inside its window: the
    # renewal's order began no earlier than the window's start, and its certificate was stored
    # before the old one expired (the handshakes above show it served in time as well).
    offsets, renewals = [], []
    replaced = Certificate.objects.filter(
        source=Certificate.Source.MANAGED, replaced_by__isnull=False
    )
    for old in replaced:
        new = Certificate.objects.get(replaces=old)
        order = AcmeOrder.objects.filter(certificate=new).get()
        start, _ = renewal_window(not_before=old.not_before, not_after=old.not_after)
        assert order.created_at >= start, (old.pk, order.created_at, start)
        assert new.created_at < old.not_after, (old.pk, new.created_at, old.not_after)
        lifetime = (old.not_after - old.not_before).total_seconds()
        offsets.append((order.created_at - old.not_before).total_seconds() / lifetime)
        renewals.append(order.created_at.timestamp())
    lapsed = Certificate.objects.filter(
        source=Certificate.Source.MANAGED, replaced_by__isnull=True, not_after__lt=_utc(ended)
    )
    assert not lapsed.exists(), list(lapsed.values_list("pk", "not_after"))
    assert len(renewals) >= RUN_CHANNELS * (RUN_LIFETIMES - 1), len(renewals)
    # Every renewal kept its key: the .key files never changed.
    for channel in channels:
        issued = Certificate.objects.filter(name=f"{channel.hostname} (managed)")
        keys = {_public_key(certificate) for certificate in issued}
        assert len(keys) == 1, channel.hostname

    # Spread out: at a fixed point of their life (the old rule: 1/2), certificates issued
    # together would be planned for renewal together forever, all at offset 0.5. Measured on
    # the moments planned for every certificate of the run (the orders themselves also wait
    # for a free worker, which on a loaded machine says more about the machine): drawn in
    # [1/3, 1/2], about half fall before the window's middle (5/12); asked: at least a
    # quarter, and in every lifetime-long slice of the run, the planned moments of the 20
    # channels fall into more than 5 different beat seconds.
    fractions = []
    for certificate in Certificate.objects.filter(pk__in=planned):
        lifetime = (certificate.not_after - certificate.not_before).total_seconds()
        due = (planned[certificate.pk] - certificate.not_before).total_seconds()
        fractions.append(due / lifetime)
    early = sum(fraction < 5 / 12 for fraction in fractions) / len(fractions)
    moments = sorted(due.timestamp() for due in planned.values())
    slices = [
        {int(m) for m in moments if begin <= m < begin + RUN_LIFETIME}
        for begin in range(int(started), int(ended) - RUN_LIFETIME, RUN_LIFETIME)
    ]
    ticks = Counter(int(at) for at in renewals if started <= at <= ended)
    print(
        f"\n{len(renewals)} renewals, {len(recorder.served)} handshakes, 0 failed; planned at "
        f"{min(fractions):.3f}..{max(fractions):.3f} of the lifetime, {early:.0%} before "
        f"5/12; orders began at {min(offsets):.3f}..{max(offsets):.3f}; distinct beat "
        f"seconds per lifetime: {[len(s) for s in slices]}; busiest second: "
        f"{max(ticks.values())} orders"
    )
    assert all(1 / 3 - 0.001 <= fraction <= 1 / 2 + 0.001 for fraction in fractions)
    assert early >= 0.25
    assert all(len(seconds) > 5 for seconds in slices)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
