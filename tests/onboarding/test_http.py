"""onboarding/http.py's ca_fetch() against real servers on 127.0.0.1 (Python's http.server,
raw sockets that misbehave, and a real nginx edge), and onboarding/checks_http.py with a real
DNS server (pebble-challtestsrv): the HTTP-01 self-check as a CA does it."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from certmgr import demo_pki
from core.addresses import address_is_public
from onboarding.checks_http import http01_self_check
from onboarding.dns import addresses_lookup
from onboarding.http import BODY_LIMIT, MAX_REDIRECTS, LookupFailed, ca_fetch
from onboarding.resolving import resolver
from saleschannels.findings import Check, Finding, Reason
from tests.nginx import nginx_run
from tests.support import port_free, require_program

SHOP = "shop.test"
TOKEN = "tok-A_b1"
PATH = f"/.well-known/acme-challenge/{TOKEN}"
KEY = b"tok-A_b1.thumbprint-Xy_z"
# Text a remote server sends: never in a finding, its words or the log.
SECRET = "remote-secret-7f3a"


# --- real servers ------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append((self.path, self.headers.get("Host")))
        status, headers, body = self.server.routes.get(self.path, (404, {}, b"Not found."))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Origin(ThreadingHTTPServer):
    """An HTTP (or, with a TLS context, HTTPS) server answering `routes`:
    path -> (status, headers, body); 404 for any other path. `requests` lists the
    (path, Host) it was asked."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.requests: list[tuple[str, str | None]] = []
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def answer(self, path: str, status: int = 200, body: bytes = b"", **headers) -> None:
        self.routes[path] = (status, headers, body)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.answer(path, status, b"moved " + SECRET.encode(), Location=location)


@contextmanager
def serving(server: Origin) -> Iterator[Origin]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def origin() -> Iterator[Origin]:
    with serving(Origin()) as server:
        yield server


@pytest.fixture
def tls_origin(pki, tmp_path) -> Iterator[Origin]:
    """An HTTPS origin whose certificate a CA would not trust, for another name; `sni` lists
    the server names clients sent."""
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["not-the-shop.test"])
    (tmp_path / "tls.crt").write_bytes(leaf.certificate_pem)
    (tmp_path / "tls.key").write_bytes(leaf.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: sni.append(name)
    with serving(Origin(tls=context)) as server:
        server.sni = sni
        yield server


@contextmanager
def raw_server(talk: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """A TCP server on 127.0.0.1 running `talk(connection, stop)` for one client; its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def run():
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection, suppress(OSError):  # OSError: the client went away
            talk(connection, stop)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(10)


def resolving(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    """A `resolve` answering from `table`; NXDOMAIN for other names."""

    def resolve(name: str) -> list[str]:
        if name not in table:
            raise LookupFailed(Reason.DNS_NXDOMAIN)
        return table[name]

    return resolve


def fetch(
    port: int,
    *,
    path: str = PATH,
    https_port: int | None = None,
    table: dict[str, list[str]] | None = None,
    allowed: Callable[[str], bool] = lambda address: True,
    timeout: float = 5.0,
    check: Check = Check.HTTP,
    expected: bytes = KEY,
) -> Finding:
    return ca_fetch(
        hostname=SHOP,
        path=path,
        port=port,
        https_port=https_port if https_port is not None else port_free(),
        resolve=resolving(table if table is not None else {SHOP: ["127.0.0.1"]}),
        address_allowed=allowed,
        timeout=timeout,
        check=check,
        expected=expected,
    )


def first_url(port: int, path: str = PATH) -> str:
    return f"http://{SHOP}:{port}{path}"


def never_said(finding: Finding, *texts: str) -> None:
    said = f"{finding.words} {finding.advice} {finding.as_dict()}"
    for text in texts:
        assert text not in said


# --- answers -----------------------------------------------------------------------------


def test_the_expected_body_is_ok_with_host_set_to_the_name(origin):
    origin.answer(PATH, body=KEY + b"\r\n \t\n")  # trailing whitespace is dropped, as CAs do

    finding = fetch(origin.port)

    assert finding == Finding(Check.HTTP, Reason.HTTP_OK, {"url": first_url(origin.port)})
    assert finding.ok
    assert finding.words == (
        f"http://shop.test:{origin.port}{PATH} answered the test token, as the CA will fetch it."
    )
    assert origin.requests == [(PATH, SHOP)]


def test_port_80_is_left_out_of_the_url():
    finding = ca_fetch(
        hostname=SHOP,
        path=PATH,
        port=80,
        https_port=443,
        resolve=resolving({SHOP: ["127.0.0.1"]}),
        address_allowed=address_is_public,
        timeout=1.0,
        check=Check.HTTP,
        expected=KEY,
    )
    assert finding.reason == Reason.HTTP_INTERNAL_ADDRESS  # nothing was fetched
    assert finding.params == {"hostname": SHOP, "address": "127.0.0.1"}
    assert finding.words == "shop.test resolves to an internal address (127.0.0.1): not fetched."


def test_other_content_is_wrong_content_and_never_repeated(origin):
    origin.answer(PATH, body=f"<h1>{SECRET}</h1>".encode())

    finding = fetch(origin.port)

    assert finding == Finding(
        Check.HTTP,
        Reason.HTTP_WRONG_CONTENT,
        {"url": first_url(origin.port), "port": origin.port, "hostname": SHOP},
    )
    assert finding.words == (
        f"{first_url(origin.port)} answered, but with other content than the test token."
    )
    never_said(finding, SECRET)


def test_a_body_longer_than_the_limit_is_wrong_even_when_it_starts_right(origin):
    origin.answer(PATH, body=KEY + b" " * BODY_LIMIT + b"x")
    assert fetch(origin.port).reason == Reason.HTTP_WRONG_CONTENT


def test_a_404_is_an_http_status(origin):
    finding = fetch(origin.port)

    assert finding == Finding(
        Check.HTTP,
        Reason.HTTP_STATUS,
        {"url": first_url(origin.port), "status": 404, "port": origin.port, "hostname": SHOP},
    )
    assert finding.words == f"{first_url(origin.port)} answered HTTP 404 instead of the test token."
    assert finding.advice == (
        f"Make sure port {origin.port} of shop.test reaches the platform's edge and passes "
        "/.well-known/acme-challenge/ through."
    )


def test_a_redirect_without_location_is_its_status(origin):
    origin.answer(PATH, 302, b"")
    finding = fetch(origin.port)
    assert (finding.reason, finding.params["status"]) == (Reason.HTTP_STATUS, 302)


def test_nothing_a_server_sends_reaches_the_log(origin, caplog):
    caplog.set_level(logging.DEBUG, logger="onboarding.http")
    origin.redirect(PATH, f"/next?{SECRET}")
    origin.answer(f"/next?{SECRET}", body=SECRET.encode(), **{"X-Secret": SECRET})

    assert fetch(origin.port).reason == Reason.HTTP_WRONG_CONTENT
    assert SECRET not in caplog.text
    assert "HTTP 302" in caplog.text and "HTTP 200" in caplog.text


# --- redirects ---------------------------------------------------------------------------


def test_a_relative_redirect_and_another_name_are_followed(origin):
    origin.redirect(PATH, "/moved/here", status=301)
    origin.redirect("/moved/here", f"http://www.shop.test:{origin.port}/final", status=308)
    origin.answer("/final", body=KEY)

    finding = fetch(origin.port, table={SHOP: ["127.0.0.1"], "www.shop.test": ["127.0.0.1"]})

    assert finding.reason == Reason.HTTP_OK
    assert finding.params == {"url": first_url(origin.port)}  # the first URL, always
    assert origin.requests == [
        (PATH, SHOP),
        ("/moved/here", SHOP),
        ("/final", "www.shop.test"),
    ]


def test_a_redirect_to_https_on_the_allowed_port_is_followed_without_verifying(origin, tls_origin):
    location = f"https://secure.shop.test:{tls_origin.port}/key?x=1"
    origin.redirect(PATH, location)
    tls_origin.answer("/key?x=1", body=KEY)

    finding = fetch(
        origin.port,
        https_port=tls_origin.port,
        table={SHOP: ["127.0.0.1"], "secure.shop.test": ["127.0.0.1"]},
    )

    assert finding == Finding(Check.HTTP, Reason.HTTP_OK, {"url": first_url(origin.port)})
    assert tls_origin.sni == ["secure.shop.test"]  # SNI is the name, not the address
    assert tls_origin.requests == [("/key?x=1", "secure.shop.test")]


def test_a_redirect_to_https_through_a_real_nginx_edge(origin, pki, tmp_path):
    """The first fetch reaches nginx's plain HTTP server, which passes /.well-known/ to the
    origin; the origin redirects to https on nginx's TLS port, where nginx picks the
    certificate by SNI (no SNI, no certificate: the handshake would fail)."""
    require_program("nginx")
    edge_dir = tmp_path / "edge"
    edge_dir.mkdir()
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=[SHOP])
    (edge_dir / f"{SHOP}.crt").write_bytes(leaf.certificate_pem)
    (edge_dir / f"{SHOP}.key").write_bytes(leaf.key_pem)
    (tmp_path / "nginx").mkdir()
    upstream = f"http://127.0.0.1:{origin.port}"
    with nginx_run(edge_dir=edge_dir, workdir=tmp_path / "nginx", acme_upstream=upstream) as edge:
        tls_path = "/.well-known/acme-challenge/over-tls"
        origin.redirect(PATH, f"https://{SHOP}:{edge.tls_port}{tls_path}", status=301)
        origin.answer(tls_path, body=KEY + b"\n")

        finding = fetch(edge.http_port, https_port=edge.tls_port)

    assert finding == Finding(Check.HTTP, Reason.HTTP_OK, {"url": first_url(edge.http_port)})
    assert origin.requests == [(PATH, SHOP), (tls_path, SHOP)]


@pytest.mark.parametrize(
    "location",
    [
        "http://shop.test:{other}/x",  # plain HTTP on another port
        "http://shop.test/x",  # port 80, but the HTTP-01 port is another here
        "https://shop.test:{port}/x",  # https on the plain HTTP port
        "ftp://shop.test/x",
        "http://127.0.0.1:{port}/x",  # CAs do not follow redirects to IP addresses
        "http://[::1]:{port}/x",
        "http://localhost:{port}/x",  # one label: no public DNS name
        "http://shop.test:99999/x",
        "http://sh_op.test:{port}/x",
    ],
)
def test_a_redirect_a_ca_does_not_follow_is_bad_and_not_shown(origin, location):
    location = location.format(port=origin.port, other=port_free()) + SECRET
    origin.redirect(PATH, location)

    finding = fetch(origin.port)

    assert finding == Finding(Check.HTTP, Reason.HTTP_REDIRECT_BAD, {"url": first_url(origin.port)})
    assert finding.words == (
        f"{first_url(origin.port)} redirects to an address a CA does not follow (only http or "
        "https, on ports 80 and 443)."
    )
    never_said(finding, SECRET, location)
    assert origin.requests == [(PATH, SHOP)]


def chain(origin: Origin, redirects: int) -> None:
    """/r0 redirects to /r1 ... to /r<redirects>, which answers the key."""
    for number in range(redirects):
        origin.redirect(f"/r{number}", f"/r{number + 1}")
    origin.answer(f"/r{redirects}", body=KEY)


def test_ten_redirects_are_followed(origin):
    chain(origin, MAX_REDIRECTS)
    assert fetch(origin.port, path="/r0").reason == Reason.HTTP_OK
    assert len(origin.requests) == MAX_REDIRECTS + 1


def test_an_eleventh_redirect_is_a_loop(origin):
    chain(origin, MAX_REDIRECTS + 1)

    finding = fetch(origin.port, path="/r0")

    assert finding == Finding(
        Check.HTTP, Reason.HTTP_REDIRECT_LOOP, {"url": first_url(origin.port, "/r0")}
    )
    assert len(origin.requests) == MAX_REDIRECTS + 1  # the last redirect is not followed


def test_a_redirect_loop(origin):
    origin.redirect(PATH, PATH)

    finding = fetch(origin.port)

    assert finding.reason == Reason.HTTP_REDIRECT_LOOP
    assert finding.words == f"{first_url(origin.port)} redirects too many times."


# --- connections that fail ---------------------------------------------------------------


def test_a_closed_port_is_refused():
    port = port_free()

    finding = fetch(port)

    assert finding == Finding(
        Check.HTTP, Reason.HTTP_REFUSED, {"address": "127.0.0.1", "port": port}
    )
    assert finding.words == f"Nothing accepts connections on port {port} of 127.0.0.1."


def test_ipv6_is_tried_first_and_ipv4_when_it_cannot_connect(origin):
    """Nothing listens on [::1]:<port> (or there is no IPv6 here): IPv4 answers."""
    origin.answer(PATH, body=KEY)
    assert fetch(origin.port, table={SHOP: ["127.0.0.1", "::1"]}).reason == Reason.HTTP_OK


def test_a_server_that_never_answers_times_out():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; no one reads
        port = silent.getsockname()[1]

        finding = fetch(port, timeout=0.3)

    assert finding == Finding(
        Check.HTTP,
        Reason.HTTP_TIMEOUT,
        {"address": "127.0.0.1", "port": port, "seconds": "0.3"},
    )
    assert finding.words == f"127.0.0.1 did not answer on port {port} within 0.3 s."


@pytest.mark.parametrize(
    "start",
    [
        b"HTTP/1.1 200 OK\r\nX-Slow: ",  # headers, a byte at a time
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",  # the body, a byte at a time
    ],
)
def test_an_answer_trickling_in_is_cut_at_the_timeout(start):
    """Each byte comes well within the socket's timeout; the whole answer does not."""

    def trickle(connection: socket.socket, stop: threading.Event) -> None:
        connection.recv(65536)
        connection.sendall(start)
        while not stop.wait(0.05):
            connection.sendall(b"x")

    with raw_server(trickle) as port:
        finding = fetch(port, timeout=0.5)

    assert (finding.reason, finding.params) == (
        Reason.HTTP_TIMEOUT,
        {"address": "127.0.0.1", "port": port, "seconds": "0.5"},
    )


def test_a_server_that_does_not_speak_http(origin):
    def banner(connection: socket.socket, stop: threading.Event) -> None:
        connection.recv(65536)
        connection.sendall(f"SSH-2.0-OpenSSH_9.6 {SECRET}\r\n".encode())

    with raw_server(banner) as port:
        finding = fetch(port)

    assert finding == Finding(
        Check.HTTP,
        Reason.HTTP_NOT_HTTP,
        {"address": "127.0.0.1", "port": port, "hostname": SHOP},
    )
    assert finding.words == f"Port {port} of 127.0.0.1 does not answer HTTP."
    never_said(finding, SECRET, "SSH")


def test_a_server_closing_without_a_word_is_a_network_error():
    def hang_up(connection: socket.socket, stop: threading.Event) -> None:
        connection.recv(65536)

    with raw_server(hang_up) as port:
        finding = fetch(port)

    assert (finding.reason, finding.params) == (
        Reason.HTTP_NETWORK,
        {"address": "127.0.0.1", "port": port},
    )


def test_a_tls_handshake_that_fails_is_a_network_error(origin):
    """A redirect to https on a port that speaks plain HTTP."""
    origin.redirect(PATH, f"https://{SHOP}:{origin.port}/x")
    assert fetch(origin.port, https_port=origin.port).reason == Reason.HTTP_NETWORK


# --- addresses ---------------------------------------------------------------------------


def test_an_internal_address_is_not_connected_to(origin):
    origin.answer(PATH, body=KEY)

    finding = fetch(origin.port, allowed=address_is_public)

    assert finding == Finding(
        Check.HTTP, Reason.HTTP_INTERNAL_ADDRESS, {"hostname": SHOP, "address": "127.0.0.1"}
    )
    assert finding.advice == "Point shop.test at the platform's public addresses."
    assert origin.requests == []


def test_one_internal_address_among_public_ones_is_refused(origin):
    finding = fetch(
        origin.port,
        table={SHOP: ["192.0.2.1", "10.1.2.3"]},
        allowed=lambda address: address != "10.1.2.3",
    )
    assert finding.params == {"hostname": SHOP, "address": "10.1.2.3"}
    assert origin.requests == []


def test_a_redirect_to_a_name_with_an_internal_address_is_not_followed(origin):
    origin.redirect(PATH, f"http://metadata.shop.test:{origin.port}/latest")

    finding = fetch(
        origin.port,
        table={SHOP: ["127.0.0.1"], "metadata.shop.test": ["169.254.169.254"]},
        allowed=lambda address: address == "127.0.0.1",  # stands for the edge's address
    )

    assert finding == Finding(
        Check.HTTP,
        Reason.HTTP_INTERNAL_ADDRESS,
        {"hostname": "metadata.shop.test", "address": "169.254.169.254"},
    )


def test_dns_failures_become_their_findings(origin):
    def failing(name: str) -> list[str]:
        raise LookupFailed(Reason.DNS_SERVFAIL, {"edge": ["192.0.2.1"], "cname_hint": ""})

    finding = ca_fetch(
        hostname=SHOP,
        path=PATH,
        port=origin.port,
        https_port=443,
        resolve=failing,
        address_allowed=lambda address: True,
        timeout=1.0,
        check=Check.HTTP,
        expected=KEY,
    )

    assert finding.reason == Reason.DNS_SERVFAIL
    assert finding.words == "The DNS servers for shop.test answered with an error (SERVFAIL)."
    assert fetch(origin.port, table={SHOP: []}).reason == Reason.DNS_NO_ADDRESS
    assert fetch(origin.port, table={}).reason == Reason.DNS_NXDOMAIN
    assert origin.requests == []


# --- the HTTP ownership token ------------------------------------------------------------


def test_the_token_check_says_found_or_wrong(origin):
    token = "certmgr-abc_DEF-123"
    path = f"/.well-known/certmgr-challenge/{token}"
    url = first_url(origin.port, path)

    def check() -> Finding:
        return fetch(origin.port, path=path, check=Check.HTTP_TOKEN, expected=token.encode())

    origin.answer(path, body=token.encode())
    assert check() == Finding(Check.HTTP_TOKEN, Reason.HTTP_TOKEN_FOUND, {"url": url})
    assert check().words == f"{url} answered this channel's token."

    origin.answer(path, body=b"certmgr-someone-else")
    wrong = Finding(Check.HTTP_TOKEN, Reason.HTTP_TOKEN_WRONG, {"url": url, "hostname": SHOP})
    assert check() == wrong
    assert check().words == f"{url} did not answer this channel's token."

    origin.answer(path, 404, b"Not found.")
    assert check() == wrong


def test_the_token_check_keeps_connection_failures():
    port = port_free()
    finding = fetch(port, check=Check.HTTP_TOKEN, expected=b"certmgr-x")
    assert finding == Finding(
        Check.HTTP_TOKEN, Reason.HTTP_REFUSED, {"address": "127.0.0.1", "port": port}
    )


# --- checks_http: the settings, a real DNS server ----------------------------------------


@pytest.fixture
def dns_settings(challtestsrv, settings, origin):
    settings.CERTMGR_DNS_RESOLVERS = [challtestsrv.dns_address]
    settings.CERTMGR_DNS_TIMEOUT = 5.0
    settings.CERTMGR_PROBE_TIMEOUT = 5.0
    settings.CERTMGR_EDGE_ADDRESSES = ["127.0.0.1"]
    settings.CERTMGR_EDGE_CNAME = ""
    settings.ACME_HTTP01_PORT = origin.port
    settings.ACME_HTTP01_TLS_PORT = port_free()
    return settings


def test_the_self_check_resolves_with_the_configured_dns_and_fetches(
    dns_settings, challtestsrv, origin
):
    challtestsrv.a_set(SHOP, ["127.0.0.1"])
    origin.answer(PATH, body=KEY)

    finding = http01_self_check(SHOP, TOKEN, KEY.decode())

    assert finding == Finding(Check.HTTP, Reason.HTTP_OK, {"url": first_url(origin.port)})
    assert origin.requests == [(PATH, SHOP)]


def test_the_self_check_connects_to_the_edge_or_public_addresses_only(
    dns_settings, challtestsrv, origin
):
    challtestsrv.a_set(SHOP, ["127.0.0.1"])
    dns_settings.CERTMGR_EDGE_ADDRESSES = ["192.0.2.10"]

    finding = http01_self_check(SHOP, TOKEN, KEY.decode())

    assert finding == Finding(
        Check.HTTP, Reason.HTTP_INTERNAL_ADDRESS, {"hostname": SHOP, "address": "127.0.0.1"}
    )
    assert origin.requests == []


def test_the_self_check_reports_dns_with_the_edge_in_its_advice(dns_settings, challtestsrv):
    dns_settings.CERTMGR_EDGE_ADDRESSES = ["192.0.2.10"]
    dns_settings.CERTMGR_EDGE_CNAME = "edge.platform.test"

    finding = http01_self_check(SHOP, TOKEN, KEY.decode())  # no record at all

    assert (finding.check, finding.reason) == (Check.HTTP, Reason.DNS_NO_ADDRESS)
    assert finding.words == "shop.test exists in DNS but has no A or AAAA record."
    assert finding.advice == (
        "Add an A record pointing at 192.0.2.10, or make it a CNAME to edge.platform.test."
    )

    challtestsrv.servfail_set(SHOP)
    assert http01_self_check(SHOP, TOKEN, KEY.decode()).reason == Reason.DNS_SERVFAIL


def test_the_self_check_connects_where_the_dns_check_found_the_name_without_asking_again(
    dns_settings, challtestsrv, origin
):
    challtestsrv.a_set(SHOP, ["127.0.0.1"])
    origin.answer(PATH, body=KEY)
    looked_up = addresses_lookup(resolver(), SHOP)
    challtestsrv.servfail_set(SHOP)  # a second question would now fail

    finding = http01_self_check(SHOP, TOKEN, KEY.decode(), looked_up=looked_up)

    assert finding == Finding(Check.HTTP, Reason.HTTP_OK, {"url": first_url(origin.port)})
    assert origin.requests == [(PATH, SHOP)]
    # A failed lookup is not reused: the check asks, and says what DNS answered.
    failed = addresses_lookup(resolver(), SHOP)
    assert http01_self_check(SHOP, TOKEN, KEY.decode(), looked_up=failed).reason == (
        Reason.DNS_SERVFAIL
    )
