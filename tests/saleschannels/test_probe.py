"""The live TLS probe (saleschannels/probe.py) against a real nginx serving the edge."""

import os
import socket
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from certificates.models import Certificate
from certmgr import demo_pki
from saleschannels.edge import edge_channel_deploy, edge_sync
from saleschannels.models import ProbeStatus, SalesChannel
from saleschannels.probe import (
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


@pytest.fixture
def silent_server():
    """A loopback port that accepts TCP connections and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"127.0.0.1:{server.getsockname()[1]}"


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
    assert channel.probe_error == ""
    assert not channel.probe_has_problem


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


def test_removed_files_make_the_probe_fail_with_a_plain_message(
    nginx_edge, make_certificate, acme, channel_with
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_channel_deploy(channel)
    channel_probe(channel)
    for suffix in (".crt", ".key"):
        (nginx_edge.edge_dir / f"{HOST}{suffix}").unlink()

    assert channel_probe(channel) == ProbeStatus.FAILED

    channel.refresh_from_db()
    assert channel.probe_error.startswith(f"TLS handshake for {HOST} at {nginx_edge.address}")
    assert "the server has no usable certificate for this name" in channel.probe_error
    assert channel.probe_fingerprint == ""
    assert channel.probe_expires_at is None


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
    assert (channel.probe_status, channel.probe_error, channel.probe_checked_at) == ("", "", None)


def test_the_address_setting_is_honoured(
    nginx_edge, settings, make_certificate, acme, channel_with, closed_port
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_channel_deploy(channel)
    assert channel_probe(channel) == ProbeStatus.OK

    settings.CERTMGR_PROBE_ADDRESS = f"127.0.0.1:{closed_port}"
    assert channel_probe(channel) == ProbeStatus.FAILED
    channel.refresh_from_db()
    assert f"127.0.0.1:{closed_port}" in channel.probe_error


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


def test_a_closed_port_fails_quickly(closed_port):
    started = time.monotonic()

    with pytest.raises(ProbeError, match="Connection refused by 127.0.0.1:\\d+"):
        probe_served_certificate(hostname=HOST, address=f"127.0.0.1:{closed_port}", timeout=5)

    assert time.monotonic() - started < 1


def test_a_server_that_never_answers_the_handshake_times_out(silent_server):
    started = time.monotonic()

    with pytest.raises(ProbeError, match=f"No answer from {silent_server} within 0.3 s"):
        probe_served_certificate(hostname=HOST, address=silent_server, timeout=0.3)

    assert time.monotonic() - started < 2


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
    SalesChannel.objects.filter(pk=plain.pk).update(probe_status="failed", probe_error="stale")
    edge_sync()
    os.unlink(nginx_edge.edge_dir / "missing.example.test.crt")

    counts = channels_probe()

    assert counts == {"ok": 10, "mismatch": 0, "expired": 1, "failed": 1}
    statuses = dict(SalesChannel.objects.values_list("hostname", "probe_status"))
    assert {statuses[channel.hostname] for channel in ok} == {"ok"}
    assert statuses["old.example.test"] == "expired"
    assert statuses[failing.hostname] == "failed"
    plain.refresh_from_db()
    assert (plain.probe_status, plain.probe_error) == ("", "")


def test_channels_probe_runs_the_handshakes_in_parallel(
    settings, make_certificate, acme, channel_with, silent_server
):
    settings.CERTMGR_PROBE_ADDRESS = silent_server
    settings.CERTMGR_PROBE_TIMEOUT = 0.5
    for index in range(8):
        channel_with(make_certificate(acme, hostnames=[f"s{index}.example.test"]))
    started = time.monotonic()

    assert channels_probe()["failed"] == 8

    # One after the other this would take 8 x 0.5 s.
    assert time.monotonic() - started < 2


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
    assert lines[1].startswith("b.example.test failed: TLS handshake for b.example.test")
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
