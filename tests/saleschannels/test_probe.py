"""The live TLS probe (saleschannels/probe.py) against a real nginx serving the edge."""

import os
import socket
import ssl
import threading
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from certificates.models import Certificate
from certmgr import demo_pki
from saleschannels.edge import edge_channel_deploy, edge_sync
from saleschannels.models import ProbeFailure, ProbeStatus, SalesChannel
from saleschannels.probe import (
    PROBE_WORKERS,
    ProbeError,
    address_parse,
    certificate_fingerprint,
    channel_probe,
    channels_probe,
    probe_served_certificate,
)
from tests.nginx import port_free

pytestmark = pytest.mark.django_db

HOST = "shop.example.test"


@pytest.fixture
def channel_with(acme):
    def make(certificate, *, hostname=None, name="Acme shop", ssl_mode="uploaded"):
        return SalesChannel.objects.create(
            institution=acme,
            name=name,
            hostname=hostname or certificate.domains[0],
            ssl_mode=ssl_mode,
            certificate=certificate,
            active_certificate=certificate,
        )

    return make


@pytest.fixture
def closed_port():
    """A loopback port with nothing listening."""
    return port_free()


# How long a server below holds a connection at most before it gives up waiting for what
# the test expects. Never a measurement: only a way to end a broken run instead of hanging.
# Probes that talk to these servers get a longer timeout still, so that only a test that
# wants a timeout ever sees one.
HOLD_SECONDS_MAX = 20.0
PROBE_TIMEOUT_SAFE = 30.0


class LoopbackServer:
    """A TCP server on 127.0.0.1 that hands each connection to `handle(server, connection)`
    in a thread of its own, and counts connections: `accepted`, `open` (the handler has not
    returned), `pending` (accepted, not answered yet: see answering()) and `peak_pending`.

    `release` is set when the server closes: handlers that hold a connection wait on it.
    """

    def __init__(self, handle: Callable[["LoopbackServer", socket.socket], None]):
        self._handle = handle
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.accepted = self.open = self.pending = self.peak_pending = 0
        self.release = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        # accept() wakes up now and then to see whether the server was closed.
        self._listener.settimeout(0.1)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def answering(self) -> None:
        """The handler is about to answer its connection: it is no longer pending."""
        with self._lock:
            self.pending -= 1

    def close(self) -> None:
        self.release.set()
        self._acceptor.join()
        self._listener.close()
        for thread in self._threads:
            thread.join(HOLD_SECONDS_MAX)

    def _accept_loop(self) -> None:
        while not self.release.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(HOLD_SECONDS_MAX)
            with self._lock:
                self.accepted += 1
                self.open += 1
                self.pending += 1
                self.peak_pending = max(self.peak_pending, self.pending)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            with connection:
                self._handle(self, connection)
        except OSError:
            pass  # the probe hung up first (or timed out): its own outcome says so
        finally:
            with self._lock:
                self.open -= 1


@pytest.fixture
def loopback_server():
    """Start LoopbackServer(handle) servers; all are closed after the test."""
    servers: list[LoopbackServer] = []

    def start(handle) -> LoopbackServer:
        servers.append(LoopbackServer(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def silent_server(loopback_server):
    """A server that accepts TCP connections, says nothing and keeps each one open until the
    test is over."""
    return loopback_server(lambda server, connection: server.release.wait())


@pytest.fixture
def tls_context(tmp_path):
    """A server TLS context with a self-signed certificate for any name; it is nobody's
    active certificate, so a channel probed against it is a mismatch (not a failure)."""
    served = demo_pki.self_signed_create(hostnames=["probe-target.example.test"])
    (tmp_path / "served.crt").write_bytes(served.certificate_pem)
    (tmp_path / "served.key").write_bytes(served.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "served.crt", tmp_path / "served.key")
    return context


def expired_certificate(institution, pki, *, hostname=HOST) -> Certificate:
    """An expired certificate with its key, stored directly: an upload would refuse it."""
    not_after = timezone.now() - timedelta(days=2)
    leaf = demo_pki.leaf_create(
        issuer=pki["intermediate"],
        hostnames=[hostname],
        not_before=not_after - timedelta(days=90),
        not_after=not_after,
    )
    certificate = Certificate(
        institution=institution,
        name="expired",
        certificate_pem=leaf.certificate_pem.decode(),
        chain_pem=pki["intermediate"].certificate_pem.decode(),
        domains=[hostname],
        fingerprint_sha256=certificate_fingerprint(leaf.certificate),
        not_before=leaf.certificate.not_valid_before_utc,
        not_after=leaf.certificate.not_valid_after_utc,
        expires_at=leaf.certificate.not_valid_after_utc,
    )
    certificate.private_key_set(leaf.key_pem.decode())
    certificate.save()
    return certificate


def test_a_channel_served_its_active_certificate_is_ok(
    nginx_edge, make_certificate, acme, channel_with
):
    certificate = make_certificate(acme, hostnames=[HOST])
    channel = channel_with(certificate)
    edge_channel_deploy(channel)
    before = timezone.now()

    assert channel_probe(channel) == ProbeStatus.OK

    channel.refresh_from_db()
    assert channel.probe_status == ProbeStatus.OK
    assert channel.probe_fingerprint == certificate.fingerprint_sha256
    assert channel.probe_expires_at == certificate.expires_at
    assert channel.probe_checked_at >= before
    assert channel.probe_failure == ""
    assert not channel.probe_has_problem
    assert channel.probe_verified_at == channel.probe_checked_at


def test_a_failed_probe_keeps_when_the_certificate_was_last_verified(
    nginx_edge, make_certificate, acme, channel_with
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_channel_deploy(channel)
    channel_probe(channel)
    channel.refresh_from_db()
    verified_at = channel.probe_verified_at
    for suffix in (".crt", ".key"):
        (nginx_edge.edge_dir / f"{HOST}{suffix}").unlink()

    assert channel_probe(channel) == ProbeStatus.FAILED

    channel.refresh_from_db()
    assert verified_at is not None
    assert channel.probe_verified_at == verified_at
    assert channel.probe_checked_at > verified_at


def test_files_replaced_behind_its_back_are_a_mismatch(
    nginx_edge, make_certificate, acme, channel_with
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_channel_deploy(channel)
    # Someone copies another certificate's files straight into the edge directory.
    intruder = demo_pki.self_signed_create(hostnames=[HOST])
    key = nginx_edge.edge_dir / f"{HOST}.key"
    key.write_bytes(intruder.key_pem)
    (nginx_edge.edge_dir / f"{HOST}.crt").write_bytes(intruder.certificate_pem)

    assert channel_probe(channel) == ProbeStatus.MISMATCH

    channel.refresh_from_db()
    assert channel.probe_fingerprint == certificate_fingerprint(intruder.certificate)
    assert channel.probe_fingerprint != channel.active_certificate.fingerprint_sha256
    assert channel.probe_has_problem


def test_removed_files_make_the_probe_fail_with_a_plain_reason(
    nginx_edge, make_certificate, acme, channel_with, caplog
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_channel_deploy(channel)
    channel_probe(channel)
    for suffix in (".crt", ".key"):
        (nginx_edge.edge_dir / f"{HOST}{suffix}").unlink()

    assert channel_probe(channel) == ProbeStatus.FAILED

    channel.refresh_from_db()
    assert channel.probe_failure == ProbeFailure.NO_CERTIFICATE
    assert channel.probe_fingerprint == ""
    assert channel.probe_expires_at is None
    # The details (where, the TLS library's reason) are for the log.
    assert f"TLS handshake for {HOST} at {nginx_edge.address}" in caplog.text


def test_an_expired_certificate_served_is_reported_expired(nginx_edge, acme, pki, channel_with):
    certificate = expired_certificate(acme, pki)
    channel = channel_with(certificate)
    edge_channel_deploy(channel)

    assert channel_probe(channel) == ProbeStatus.EXPIRED

    channel.refresh_from_db()
    assert channel.probe_fingerprint == certificate.fingerprint_sha256
    assert channel.probe_expires_at == certificate.expires_at


def test_expiry_is_judged_at_now(nginx_edge, make_certificate, acme, channel_with):
    certificate = make_certificate(acme, hostnames=[HOST], days_left=10)
    channel = channel_with(certificate)
    edge_channel_deploy(channel)

    assert channel_probe(channel, now=timezone.now() + timedelta(days=11)) == ProbeStatus.EXPIRED
    assert channel_probe(channel, now=timezone.now()) == ProbeStatus.OK


def test_something_served_for_a_channel_without_active_certificate_is_a_mismatch(
    nginx_edge, make_certificate, acme
):
    certificate = make_certificate(acme, hostnames=[HOST])
    deployed = SalesChannel.objects.create(
        institution=acme,
        name="shop",
        hostname=HOST,
        ssl_mode="uploaded",
        active_certificate=certificate,
    )
    edge_channel_deploy(deployed)
    # The database loses the active certificate; the files stay (no deployment ran).
    SalesChannel.objects.filter(pk=deployed.pk).update(active_certificate=None, ssl_mode="managed")
    channel = SalesChannel.objects.get(pk=deployed.pk)

    assert channel_probe(channel) == ProbeStatus.MISMATCH


def test_a_channel_without_ssl_is_not_probed_and_its_old_result_is_cleared(
    settings, make_certificate, acme, channel_with, closed_port
):
    settings.CERTMGR_PROBE_ADDRESS = f"127.0.0.1:{closed_port}"
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    assert channel_probe(channel) == ProbeStatus.FAILED
    channel.ssl_mode = SalesChannel.SslMode.NONE
    channel.save()

    assert channel_probe(channel) == ProbeStatus.UNKNOWN

    channel.refresh_from_db()
    assert (channel.probe_status, channel.probe_failure, channel.probe_checked_at) == ("", "", None)


def test_the_address_setting_is_honoured(
    nginx_edge, settings, make_certificate, acme, channel_with, closed_port, caplog
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_channel_deploy(channel)
    assert channel_probe(channel) == ProbeStatus.OK

    settings.CERTMGR_PROBE_ADDRESS = f"127.0.0.1:{closed_port}"
    assert channel_probe(channel) == ProbeStatus.FAILED
    channel.refresh_from_db()
    assert channel.probe_failure == ProbeFailure.REFUSED
    assert f"Connection refused by 127.0.0.1:{closed_port}" in caplog.text


def test_probe_served_certificate_returns_the_leaf_for_the_sni_name(
    nginx_edge, make_certificate, acme, channel_with
):
    certificate = make_certificate(acme, hostnames=[HOST])
    edge_channel_deploy(channel_with(certificate))

    served = probe_served_certificate(hostname=HOST, address=nginx_edge.address, timeout=5)

    assert certificate_fingerprint(served) == certificate.fingerprint_sha256
    with pytest.raises(ProbeError, match="TLS handshake for other.example.test"):
        probe_served_certificate(
            hostname="other.example.test", address=nginx_edge.address, timeout=5
        )


def test_a_port_that_speaks_plain_http_is_named_as_such(nginx_edge):
    with pytest.raises(ProbeError, match="does not speak TLS"):
        probe_served_certificate(hostname=HOST, address=nginx_edge.http_address, timeout=5)


def test_a_closed_port_is_reported_refused_not_waited_for(closed_port):
    # A refusal is the kernel's immediate answer; a probe that waited for its timeout instead
    # would say "No answer from ... within 30 s".
    with pytest.raises(ProbeError, match="Connection refused by 127.0.0.1:\\d+"):
        probe_served_certificate(
            hostname=HOST, address=f"127.0.0.1:{closed_port}", timeout=PROBE_TIMEOUT_SAFE
        )


def test_a_server_that_never_answers_the_handshake_times_out(silent_server):
    with pytest.raises(ProbeError, match=f"No answer from {silent_server.address} within 0.3 s"):
        probe_served_certificate(hostname=HOST, address=silent_server.address, timeout=0.3)

    # The probe gave up on its own: the server had its connection and still holds it open
    # (it lets go only when the test is over), so nothing but the timeout ended the call.
    assert silent_server.accepted == 1
    assert silent_server.open == 1
    assert not silent_server.release.is_set()


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 support")
def test_an_ipv6_address_is_understood(closed_port):
    with pytest.raises(ProbeError, match=r"\[::1\]:\d+"):
        probe_served_certificate(hostname=HOST, address=f"[::1]:{closed_port}", timeout=1)


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("127.0.0.1:8443", ("127.0.0.1", 8443)),
        ("edge.internal:443", ("edge.internal", 443)),
        ("[::1]:8443", ("::1", 8443)),
        (" [2001:db8::1]:443 ", ("2001:db8::1", 443)),
    ],
)
def test_address_parse(address, parsed):
    assert address_parse(address) == parsed


@pytest.mark.parametrize("address", ["127.0.0.1", "::1:443", "[::1]443", "host:0", "host:x", ":1"])
def test_address_parse_refuses_malformed_addresses(address):
    with pytest.raises(ValueError, match="expected"):
        address_parse(address)


def test_channels_probe_counts_every_ssl_channel_and_skips_the_others(
    nginx_edge, make_certificate, acme, pki, channel_with
):
    ok = [
        channel_with(make_certificate(acme, hostnames=[f"ok{index}.example.test"]))
        for index in range(10)
    ]
    channel_with(expired_certificate(acme, pki, hostname="old.example.test"))
    failing = channel_with(make_certificate(acme, hostnames=["missing.example.test"]))
    plain = channel_with(make_certificate(acme, hostnames=["plain.example.test"]), ssl_mode="none")
    SalesChannel.objects.filter(pk=plain.pk).update(probe_status="failed", probe_failure="dns")
    edge_sync()
    os.unlink(nginx_edge.edge_dir / "missing.example.test.crt")

    counts = channels_probe()

    assert counts == {"ok": 10, "mismatch": 0, "expired": 1, "failed": 1}
    statuses = dict(SalesChannel.objects.values_list("hostname", "probe_status"))
    assert {statuses[channel.hostname] for channel in ok} == {"ok"}
    assert statuses["old.example.test"] == "expired"
    assert statuses[failing.hostname] == "failed"
    plain.refresh_from_db()
    assert (plain.probe_status, plain.probe_failure) == ("", "")


def test_channels_probe_runs_a_pool_of_handshakes_at_once(
    settings, make_certificate, acme, channel_with, loopback_server, tls_context
):
    # The server answers no connection until PROBE_WORKERS of them wait unanswered at once.
    # Probes one after the other would never get there: the first would wait alone until the
    # server gave up, and the peak would be 1.
    pool_full = threading.Event()

    def answer_once_the_pool_is_full(server, connection):
        if server.pending >= PROBE_WORKERS:
            pool_full.set()
        if not pool_full.wait(HOLD_SECONDS_MAX):
            pool_full.set()  # give up: the peak below says what happened
        server.answering()
        tls_context.wrap_socket(connection, server_side=True).close()

    server = loopback_server(answer_once_the_pool_is_full)
    settings.CERTMGR_PROBE_ADDRESS = server.address
    settings.CERTMGR_PROBE_TIMEOUT = PROBE_TIMEOUT_SAFE
    channels = PROBE_WORKERS + 4
    for index in range(channels):
        channel_with(make_certificate(acme, hostnames=[f"s{index:02}.example.test"]))

    counts = channels_probe()

    # Every probe got its handshake (a mismatch, not a failure: nothing timed out), with
    # exactly the pool's worth of handshakes waiting at once, never more.
    assert counts == {"ok": 0, "mismatch": channels, "expired": 0, "failed": 0}
    assert server.accepted == channels
    assert server.peak_pending == PROBE_WORKERS


def test_a_slow_host_does_not_hold_the_other_probes_up(
    settings, make_certificate, acme, channel_with, loopback_server, tls_context
):
    # The slow host's handshake waits until every other channel has had its answer, so this
    # passes only if the others were probed while the slow one was still waiting.
    slow = "a-slow.example.test"  # first by hostname: probed first, one after the other
    others = {f"other{index:02}.example.test" for index in range(PROBE_WORKERS + 3)}
    answered: list[str] = []
    others_answered = threading.Event()
    slow_released = []
    # The name each connection asked for (SNI), by the server thread that handles it.
    asked: dict[int, str] = {}

    def hold_the_slow_host(tls, server_name, context):
        asked[threading.get_ident()] = server_name
        if server_name == slow:
            slow_released.append(others_answered.wait(HOLD_SECONDS_MAX))

    tls_context.sni_callback = hold_the_slow_host

    def answer(server, connection):
        server.answering()
        tls_context.wrap_socket(connection, server_side=True).close()
        answered.append(asked[threading.get_ident()])
        if others <= set(answered):
            others_answered.set()

    server = loopback_server(answer)
    settings.CERTMGR_PROBE_ADDRESS = server.address
    settings.CERTMGR_PROBE_TIMEOUT = PROBE_TIMEOUT_SAFE
    for hostname in [slow, *sorted(others)]:
        channel_with(make_certificate(acme, hostnames=[hostname]))
    assert SalesChannel.objects.first().hostname == slow

    counts = channels_probe()

    assert slow_released == [True]  # released by the others' answers, not by giving up
    assert set(answered[:-1]) == others and answered[-1] == slow
    assert counts == {"ok": 0, "mismatch": len(others) + 1, "expired": 0, "failed": 0}


def test_probe_channels_command_prints_one_line_per_channel_and_a_summary(
    nginx_edge, make_certificate, acme, channel_with
):
    channel_with(make_certificate(acme, hostnames=["a.example.test"]))
    channel_with(make_certificate(acme, hostnames=["b.example.test"]))
    channel_with(make_certificate(acme, hostnames=["c.example.test"]), ssl_mode="none")
    edge_sync()
    (nginx_edge.edge_dir / "b.example.test.key").unlink()
    out = StringIO()

    call_command("probe_channels", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "a.example.test ok"
    assert lines[1] == (
        "b.example.test failed: The server has no usable certificate for this name."
    )
    assert lines[2] == "1 ok, 0 mismatch, 0 expired, 1 failed"
    assert len(lines) == 3


def test_probe_channels_command_probes_one_hostname(
    nginx_edge, make_certificate, acme, channel_with
):
    channel_with(make_certificate(acme, hostnames=["a.example.test"]))
    channel_with(make_certificate(acme, hostnames=["b.example.test"]))
    edge_sync()
    out = StringIO()

    call_command("probe_channels", "--hostname", "B.example.test", stdout=out)

    assert out.getvalue().splitlines() == [
        "b.example.test ok",
        "1 ok, 0 mismatch, 0 expired, 0 failed",
    ]
    assert SalesChannel.objects.get(hostname="a.example.test").probe_status == ""
    with pytest.raises(CommandError, match="No sales channel has the hostname x.example.test"):
        call_command("probe_channels", "--hostname", "x.example.test")
