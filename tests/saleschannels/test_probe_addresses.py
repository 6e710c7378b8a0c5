"""The live probe connects only where it may (saleschannels/probe.py, core/addresses.py).

Resolving a tenant's hostname by DNS (no CERTMGR_PROBE_ADDRESS), the probe never connects to
an internal address, connects to the very address it checked, and the channel pages show
what it found in fixed plain words: no remote header value (a redirect's Location), no raw
exception text, no fingerprint of a server it must not reach.
"""

import re
import socket
import ssl
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from certificates import services as certificate_services
from certmgr import demo_pki
from saleschannels import probe
from saleschannels import services as channel_services
from saleschannels import tasks as channel_tasks
from saleschannels.models import ProbeFailure, ProbeStatus, SalesChannel
from saleschannels.probe import (
    ProbeError,
    apple_file_fetch,
    certificate_fingerprint,
    channel_probe,
    probe_served_certificate,
)
from tests.apple import PROOF_BYTES
from tests.support import page_html

pytestmark = pytest.mark.django_db

HOST = "shop.attacker.test"
# Where the internal server's redirect points: it must never reach a page.
LEAK = "https://metadata.internal.test/latest/secret-token-4f9a2c"
# Long enough for a loopback handshake on a loaded machine; the tests never wait it out.
TIMEOUT = 20.0
REPO_ROOT = Path(__file__).resolve().parents[2]


class TlsServer:
    """A TLS server on 127.0.0.1 with a certificate of its own, answering any HTTP request
    with a redirect to LEAK. Counts the connections it accepted and keeps the SNI names and
    Host headers it was sent."""

    def __init__(self, tmp_path: Path, label: str):
        served = demo_pki.self_signed_create(hostnames=[f"{label}.internal.test"])
        (tmp_path / f"{label}.crt").write_bytes(served.certificate_pem)
        (tmp_path / f"{label}.key").write_bytes(served.key_pem)
        self.fingerprint = certificate_fingerprint(served.certificate)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(tmp_path / f"{label}.crt", tmp_path / f"{label}.key")
        self.context.sni_callback = lambda tls, name, context: self.server_names.append(name)
        self.accepted = 0
        self.server_names: list[str] = []
        self.hosts: list[str] = []
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.settimeout(TIMEOUT)
            try:
                with self.context.wrap_socket(connection, server_side=True) as tls:
                    self._answer(tls)
            except OSError:
                pass  # the TLS probe hangs up after the handshake

    def _answer(self, tls: ssl.SSLSocket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = tls.recv(4096)
            if not chunk:
                return
            request += chunk
        host = re.search(rb"\r\nHost: ([^\r]*)\r\n", request)
        self.hosts.append(host.group(1).decode() if host else "")
        tls.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: " + LEAK.encode() + b"\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )


@pytest.fixture
def tls_server(tmp_path):
    """Start TlsServer(label) servers; all are closed after the test."""
    servers = []

    def start(label: str = "internal") -> TlsServer:
        servers.append(TlsServer(tmp_path, label))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def dns(monkeypatch, settings):
    """The probe resolves by DNS; `answers[name]` is what a name resolves to: a list of
    addresses (port 443), of (address, port), or an exception to raise. Other names resolve
    as usual. `lookups` lists the names asked for."""
    settings.CERTMGR_PROBE_ADDRESS = ""
    settings.CERTMGR_PROBE_TIMEOUT = TIMEOUT
    real_getaddrinfo = socket.getaddrinfo
    answers: dict = {}
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        answer = answers[host]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer()
        result = []
        for entry in answer:
            address, port_ = entry if isinstance(entry, tuple) else (entry, port)
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port_, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_)))
        return result

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


@pytest.fixture
def connections(monkeypatch):
    """Every TCP connection attempted is recorded and refused: nothing leaves the machine."""
    attempted = []

    def connect(self, address):
        attempted.append(address[:2])
        raise ConnectionRefusedError("not reachable from the tests")

    def create_connection(address, *args, **kwargs):
        attempted.append(tuple(address))
        raise ConnectionRefusedError("not reachable from the tests")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempted


def proof_upload(institution):
    return certificate_services.identity_proof_upload(
        institution=institution,
        name="domain file",
        content=PROOF_BYTES,
        expires_at=timezone.now() + timedelta(days=365),
        actor=None,
    )


def apple_pay_channel(institution, hostname=HOST) -> SalesChannel:
    return SalesChannel.objects.create(
        institution=institution,
        name="Shop",
        hostname=hostname,
        ssl_mode=SalesChannel.SslMode.MANAGED,
        apple_pay_enabled=True,
        hostname_verified_at=timezone.now(),
    )


def test_a_hostname_resolving_to_an_internal_server_is_never_connected_to(
    client,
    alice,
    acme,
    dns,
    tls_server,
    monkeypatch,
    caplog,
    django_capture_on_commit_callbacks,
):
    """The attack as reported: a manager's channel whose name points at a TLS server inside
    the platform, Apple Pay enabled and managed mode chosen: the probes that follow (queued
    by the real views) refuse the address, and the page says so in plain words."""
    answers, lookups = dns
    internal = tls_server()
    answers[HOST] = [("127.0.0.1", internal.port)]
    proof_upload(acme)
    probed = []
    monkeypatch.setattr(
        channel_tasks.probe_channel,
        "delay",
        lambda pk: probed.append(channel_tasks.probe_channel(pk)),
    )
    client.force_login(alice)
    client.post(reverse("channel_new"), {"institution": acme.pk, "name": "Shop", "hostname": HOST})
    channel = SalesChannel.objects.get(hostname=HOST)
    # Say staff approved the name (an unverified one gets no Apple Pay file to probe at all):
    # the probes must still refuse the internal address.
    channel_services.channel_hostname_verified_mark(channel=channel, method="staff", actor=None)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("channel_ssl", args=[channel.pk]), {"mode": "managed"})
        client.post(reverse("channel_apple_pay", args=[channel.pk]), {"apple_pay_enabled": "on"})

    assert probed and set(probed) == {ProbeStatus.FAILED}
    assert lookups  # it did resolve the name: the refusal came from the address checked
    assert internal.accepted == 0
    channel.refresh_from_db()
    assert channel.probe_failure == ProbeFailure.INTERNAL_ADDRESS
    assert channel.apple_probe_failure == ProbeFailure.INTERNAL_ADDRESS
    assert channel.probe_fingerprint == ""
    assert "127.0.0.1" in caplog.text  # the operator's log names the address
    page = page_html(client.get(channel.get_absolute_url()))
    assert escape(ProbeFailure.INTERNAL_ADDRESS.label) in page
    assert "Refused: internal address" in page
    assert internal.fingerprint not in page
    assert "127.0.0.1" not in page
    assert LEAK not in page


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["93.184.215.14", "127.0.0.1"],  # one internal address refuses the name
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["::127.0.0.1"],
        ["64:ff9b::7f00:1"],
        ["64:ff9b::a9fe:a9fe"],
        ["2002:7f00:1::"],
        ["fd00::1"],
    ],
)
def test_every_internal_answer_is_refused_before_any_connection(acme, dns, connections, answer):
    answers, _ = dns
    answers[HOST] = answer
    proof_upload(acme)
    channel = apple_pay_channel(acme)

    assert channel_probe(channel) == ProbeStatus.FAILED

    assert connections == []
    channel.refresh_from_db()
    assert channel.probe_failure == ProbeFailure.INTERNAL_ADDRESS
    assert channel.apple_probe_failure == ProbeFailure.INTERNAL_ADDRESS
    assert channel.apple_probe_ok is False


@pytest.mark.parametrize(
    "hostname", ["0x7f.1", "127.0.0.0x1", "2130706433", "127.1", "169.254.169.0xfe"]
)
def test_a_stored_hostname_the_resolver_reads_as_an_internal_address_is_refused(
    acme, settings, connections, hostname
):
    """Rows saved before hostnames spelling an IP address were refused: the C library's
    resolver reads them as addresses, and the probe refuses what they resolve to."""
    settings.CERTMGR_PROBE_ADDRESS = ""
    channel = apple_pay_channel(acme, hostname)

    assert channel_probe(channel) == ProbeStatus.FAILED

    assert connections == []
    channel.refresh_from_db()
    assert channel.probe_failure == ProbeFailure.INTERNAL_ADDRESS


def test_a_name_answering_otherwise_the_second_time_is_not_followed(dns, connections):
    """DNS rebinding: public when checked, loopback from then on. The connection goes to
    the address checked; the name is not resolved again for it."""
    answers, lookups = dns
    given = iter([["93.184.215.14"]])
    answers[HOST] = lambda: next(given, ["127.0.0.1"])

    with pytest.raises(ProbeError) as refused:
        probe_served_certificate(hostname=HOST, timeout=TIMEOUT)

    assert refused.value.failure == ProbeFailure.REFUSED  # by the test's fake network
    assert connections == [("93.184.215.14", 443)]
    assert lookups == [HOST]
    # The next probe resolves again, and is refused before connecting.
    with pytest.raises(ProbeError) as internal:
        apple_file_fetch(hostname=HOST, timeout=TIMEOUT)
    assert internal.value.failure == ProbeFailure.INTERNAL_ADDRESS
    assert connections == [("93.184.215.14", 443)]


def test_the_probe_connects_by_the_checked_address_with_the_name_for_sni_and_host(
    acme, dns, tls_server, monkeypatch
):
    """The control of the tests above: with the address judged public (the rule stubbed
    here, the only way to reach a server on this machine), the same fake DNS leads the probe
    to the server, by the address and port resolved, with SNI and Host = the hostname."""
    answers, lookups = dns
    server = tls_server()
    answers[HOST] = [("127.0.0.1", server.port)]
    monkeypatch.setattr(probe, "addresses_not_public", lambda addresses: [])
    proof_upload(acme)
    channel = apple_pay_channel(acme)

    assert channel_probe(channel) == ProbeStatus.MISMATCH

    channel.refresh_from_db()
    assert channel.probe_fingerprint == server.fingerprint
    assert channel.apple_probe_failure == ProbeFailure.REDIRECT
    assert server.accepted == 2  # the Apple Pay file, then the TLS probe
    assert server.server_names == [HOST, HOST]
    assert server.hosts == [HOST]
    assert lookups == [HOST, HOST]  # once per connection


def test_a_redirects_location_never_reaches_the_page(
    client, alice, acme, settings, tls_server, caplog
):
    """Through the operator's edge (CERTMGR_PROBE_ADDRESS) the probe talks to a server that
    redirects: the page says a redirect was answered, in its own words; the log has where."""
    server = tls_server()
    settings.CERTMGR_PROBE_ADDRESS = f"127.0.0.1:{server.port}"
    settings.CERTMGR_PROBE_TIMEOUT = TIMEOUT
    proof_upload(acme)
    channel = apple_pay_channel(acme)

    channel_probe(channel)

    channel.refresh_from_db()
    assert channel.apple_probe_failure == ProbeFailure.REDIRECT
    assert LEAK in caplog.text
    client.force_login(alice)
    page = page_html(client.get(channel.get_absolute_url()))
    assert escape(ProbeFailure.REDIRECT.label) in page
    assert LEAK not in page and "metadata.internal.test" not in page
    assert "302" not in page


def test_a_name_that_does_not_resolve_is_a_dns_failure(client, alice, acme, dns, connections):
    answers, _ = dns
    answers[HOST] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    channel = apple_pay_channel(acme)

    assert channel_probe(channel) == ProbeStatus.FAILED

    assert connections == []
    channel.refresh_from_db()
    assert channel.probe_failure == ProbeFailure.DNS
    client.force_login(alice)
    page = page_html(client.get(channel.get_absolute_url()))
    # Its own reason in plain words, with advice; not a handshake that never happened.
    assert "Hostname does not resolve</span>" in page
    assert f"{HOST} does not resolve in DNS, so the live probe could not check" in page
    advice = f"Give {HOST} an A/AAAA record pointing at the platform's edge, or a CNAME to it"
    assert escape(advice) in page
    assert "TLS handshake failed" not in page
    assert "Name or service not known" not in page


@pytest.mark.parametrize("failure", [f for f in ProbeFailure if f != ProbeFailure.NONE])
def test_each_reason_shows_in_its_fixed_words(client, alice, acme, failure):
    channel = apple_pay_channel(acme)
    SalesChannel.objects.filter(pk=channel.pk).update(
        probe_status=ProbeStatus.FAILED,
        probe_failure=failure,
        probe_checked_at=timezone.now(),
        apple_probe_ok=False,
        apple_probe_failure=failure,
        apple_probe_checked_at=timezone.now(),
    )
    channel.refresh_from_db()
    client.force_login(alice)

    page = page_html(client.get(channel.get_absolute_url()))

    if failure == ProbeFailure.DNS:  # a typed reason: its own words (the test above)
        assert f"{HOST} does not resolve in DNS" in page
    else:
        assert f"{escape(failure.label)}." in page  # the TLS probe's alert
    assert escape(channel.apple_probe_explanation) in page


def test_docker_compose_points_the_probe_at_the_edge():
    """The production layout probes its own edge, never where a tenant's DNS points."""
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    assert re.search(r"^    CERTMGR_PROBE_ADDRESS: edge:443$", compose, re.MULTILINE)
    assert re.search(r"^  edge:$", compose, re.MULTILINE)
    nginx = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"listen 443 ssl", nginx)
