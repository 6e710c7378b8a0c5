"""Fetch a URL the way an ACME CA validates an HTTP-01 challenge, as a typed Finding (pure: no
Django). Used by the pre-flight HTTP-01 self-check and by the HTTP ownership token (README,
"Onboarding a hostname"; the glue with settings is onboarding/checks_http.py).

What the CA does (RFC 8555, section 8.3, https://www.rfc-editor.org/rfc/rfc8555#section-8.3,
and Let's Encrypt's documented behaviour,
https://letsencrypt.org/docs/challenge-types/#http-01-challenge), and so what this does:

* ``GET http://<hostname>/<path>`` on port `port` (80 in production), with Host (and, over
  TLS, SNI) set to the name;
* up to MAX_REDIRECTS redirects (301, 302, 303, 307, 308), each to an ``http:`` URL on `port`
  or an ``https:`` URL on `https_port` (443 in production), whose host is a DNS name, not an
  IP address; anything else is a bad redirect, one more redirect a loop. The certificate of
  an ``https:`` target is not verified;
* the answer must be 200, and its body, with trailing whitespace removed, the expected
  value. At most BODY_LIMIT bytes of it are read.

The name of each hop is resolved once by `resolve`, every address it gives is checked with
`address_allowed` (core.addresses' rule plus the edge's own addresses, for the caller to
decide) and the connection goes to that very address: a name that answers otherwise the
second time (DNS rebinding) changes nothing. IPv6 is tried first, IPv4 when IPv6 cannot
connect, as Let's Encrypt does.

One connection, from connect to the last byte read, takes at most `timeout` seconds: the
socket's timeout bounds each wait, and a watchdog shuts the socket down at the deadline, so a
server that trickles its answer a byte at a time cannot hold a worker.

A finding's parameters are values certmgr chose or looked up (names, addresses, ports, the
status code): never a body, a header or an exception message, which are not logged either
(the debug log has statuses and lengths). A redirect's Location is not shown: a bad redirect
names the first URL only.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from saleschannels.findings import Check, Finding, Reason

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 10
BODY_LIMIT = 8 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Mozilla/5.0 (compatible; certmgr HTTP-01 self-check)"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Characters kept as they are in a redirect's path and query (RFC 3986, section 3.3,
# https://www.rfc-editor.org/rfc/rfc3986#section-3.3, with "%" for existing escapes); any
# other (a space, a control or non-ASCII character) is percent-encoded.
_TARGET_SAFE = "/:@!$&'()*+,;=-._~%?"
# What the network and the answer's parser may raise; anything else is a bug and propagates.
_FETCH_ERRORS = (OSError, http.client.HTTPException, HTTPError, ValueError)


class LookupFailed(Exception):
    """Raised by a `resolve` function when a name has no usable answer in DNS.

    `reason` is one of DNS_NXDOMAIN, DNS_SERVFAIL, DNS_TIMEOUT or DNS_NO_ADDRESS (an empty
    list returned by `resolve` is DNS_NO_ADDRESS too); `params` are added to the finding's
    (e.g. what its advice names), after ``hostname`` and ``name``, the name looked up.
    """

    def __init__(self, reason: Reason, params: dict | None = None):
        super().__init__(reason.value)
        self.reason = reason
        self.params = dict(params or {})


def ca_fetch(
    *,
    hostname: str,
    path: str,
    port: int,
    https_port: int,
    resolve: Callable[[str], list[str]],
    address_allowed: Callable[[str], bool],
    timeout: float,
    check: Check,
    expected: bytes,
) -> Finding:
    """Fetch ``http://<hostname>:<port><path>`` as the CA does and say what it found.

    With ``check=Check.HTTP``: HTTP_OK, HTTP_STATUS or HTTP_WRONG_CONTENT. With
    ``check=Check.HTTP_TOKEN``: HTTP_TOKEN_FOUND, else HTTP_TOKEN_WRONG for any answer that
    is not the expected 200. Either way, a failure before an answer is HTTP_REFUSED,
    HTTP_TIMEOUT, HTTP_NETWORK, HTTP_NOT_HTTP, HTTP_INTERNAL_ADDRESS, HTTP_REDIRECT_BAD,
    HTTP_REDIRECT_LOOP or a DNS_* reason (`resolve` raising LookupFailed).
    """
    fetch = _Fetch(
        hostname=hostname,
        url=f"http://{hostname}{'' if port == 80 else f':{port}'}{path}",
        port=port,
        https_port=https_port,
        resolve=resolve,
        address_allowed=address_allowed,
        timeout=timeout,
        check=check,
        expected=expected,
    )
    target = _Target(scheme="http", host=hostname, port=port, request_target=path)
    try:
        for redirects in range(MAX_REDIRECTS + 1):
            answer = _hop(fetch, target, redirects)
            if answer.status not in REDIRECT_STATUSES or answer.location is None:
                return _verdict(fetch, answer)
            if redirects == MAX_REDIRECTS:
                return Finding(check, Reason.HTTP_REDIRECT_LOOP, {"url": fetch.url})
            target = _redirect_target(fetch, target, answer.location)
    except _Stop as stop:
        return stop.finding
    raise AssertionError("unreachable: the loop returns")  # pragma: no cover


@dataclass(frozen=True)
class _Fetch:
    """One ca_fetch() call: what every hop needs."""

    hostname: str
    url: str  # the first URL, the one findings name
    port: int
    https_port: int
    resolve: Callable[[str], list[str]]
    address_allowed: Callable[[str], bool]
    timeout: float
    check: Check
    expected: bytes


@dataclass(frozen=True)
class _Target:
    """Where one hop goes: the name (for DNS, Host and SNI), the port, the request-target."""

    scheme: str
    host: str
    port: int
    request_target: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.request_target}"


@dataclass(frozen=True)
class _Answer:
    status: int
    location: str | None  # a redirect's Location, never shown nor logged
    body: bytes  # read for a 200 only


class _Stop(Exception):
    """Ends the fetch with `finding`."""

    def __init__(self, finding: Finding):
        super().__init__(finding.reason.value)
        self.finding = finding


class _ConnectFailed(_Stop):
    """No TCP connection to an address: the next address family may still work."""


def _verdict(fetch: _Fetch, answer: _Answer) -> Finding:
    good = (
        answer.status == 200
        and len(answer.body) <= BODY_LIMIT
        and answer.body.rstrip() == fetch.expected
    )
    if fetch.check == Check.HTTP_TOKEN:
        if good:
            return Finding(fetch.check, Reason.HTTP_TOKEN_FOUND, {"url": fetch.url})
        return Finding(
            fetch.check, Reason.HTTP_TOKEN_WRONG, {"url": fetch.url, "hostname": fetch.hostname}
        )
    if good:
        return Finding(fetch.check, Reason.HTTP_OK, {"url": fetch.url})
    where = {"url": fetch.url, "port": fetch.port, "hostname": fetch.hostname}
    if answer.status != 200:
        return Finding(fetch.check, Reason.HTTP_STATUS, {**where, "status": answer.status})
    return Finding(fetch.check, Reason.HTTP_WRONG_CONTENT, where)


def _redirect_target(fetch: _Fetch, current: _Target, location: str) -> _Target:
    """Where a redirect leads, when the CA would follow it; else _Stop(HTTP_REDIRECT_BAD)."""
    bad = _Stop(Finding(fetch.check, Reason.HTTP_REDIRECT_BAD, {"url": fetch.url}))
    try:
        parts = urlsplit(urljoin(current.url, location.strip()))
        explicit_port = parts.port
    except ValueError:  # an unbalanced "[", a port out of range
        raise bad from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise bad
    port = explicit_port or _DEFAULT_PORTS[scheme]
    if port != (fetch.port if scheme == "http" else fetch.https_port):
        raise bad
    host = (parts.hostname or "").rstrip(".")  # urlsplit lowercases it
    if not _dns_name(host):
        raise bad
    request_target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        request_target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    return _Target(scheme=scheme, host=host, port=port, request_target=request_target)


def _dns_name(host: str) -> bool:
    """A DNS name of two labels or more (RFC 1123, section 2.1,
    https://www.rfc-editor.org/rfc/rfc1123#section-2.1), not an IP address: the CA follows
    redirects to names only."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return False
    labels = host.split(".")
    return (
        len(host) <= 253
        and len(labels) >= 2
        and all(_DNS_LABEL.fullmatch(label) for label in labels)
    )


def _hop(fetch: _Fetch, target: _Target, number: int) -> _Answer:
    """One request: resolve, check every address, connect (IPv6 first), read the answer."""
    addresses = _addresses(fetch, target.host)
    candidates = [
        address
        for address in (
            next((address for address in addresses if ":" in address), None),
            next((address for address in addresses if ":" not in address), None),
        )
        if address is not None
    ]
    for index, address in enumerate(candidates):
        try:
            return _exchange(fetch, target, address, number)
        except _ConnectFailed:
            if index == len(candidates) - 1:
                raise
    raise AssertionError("unreachable: the last candidate returns or raises")  # pragma: no cover


def _addresses(fetch: _Fetch, name: str) -> list[str]:
    """The addresses of `name`, all allowed; else _Stop with the DNS or internal finding."""
    try:
        found = list(dict.fromkeys(fetch.resolve(name)))
    except LookupFailed as failed:
        params = {"hostname": name, "name": name, **failed.params}
        raise _Stop(Finding(fetch.check, failed.reason, params)) from None
    if not found:
        params = {"hostname": name, "name": name}
        raise _Stop(Finding(fetch.check, Reason.DNS_NO_ADDRESS, params))
    for address in found:
        if not fetch.address_allowed(address):
            params = {"hostname": name, "address": address}
            raise _Stop(Finding(fetch.check, Reason.HTTP_INTERNAL_ADDRESS, params))
    return found


def _exchange(fetch: _Fetch, target: _Target, address: str, number: int) -> _Answer:
    """GET `target` from `address`; its status, and its Location or (for a 200) body."""
    if target.scheme == "https":
        connection = HTTPSConnection(
            address,
            target.port,
            timeout=fetch.timeout,
            server_hostname=target.host,
            cert_reqs="CERT_NONE",
            assert_hostname=False,
        )
    else:
        connection = HTTPConnection(address, target.port, timeout=fetch.timeout)
    watchdog = _Watchdog(connection, fetch.timeout)
    response = None
    try:
        try:
            connection.connect()
        except (NewConnectionError, ConnectTimeoutError) as error:
            finding = _failure(fetch, error, address, target.port, False)
            _failure_log(fetch, number, address, target.port, error, finding)
            raise _ConnectFailed(finding) from None
        watchdog.watch(connection.sock)
        connection.request(
            "GET",
            target.request_target,
            headers={
                "Host": target.host,
                "User-Agent": USER_AGENT,
                "Accept": "*/*",
                "Connection": "close",
            },
        )
        # http.client's own parser, not urllib3's wrapper: the latter logs malformed headers.
        response = http.client.HTTPConnection.getresponse(connection)
        location = None
        body = b""
        if response.status in REDIRECT_STATUSES:
            location = response.getheader("Location")
        elif response.status == 200:
            body = _body_read(response)
    except _FETCH_ERRORS as error:
        finding = _failure(fetch, error, address, target.port, watchdog.fired)
        _failure_log(fetch, number, address, target.port, error, finding)
        raise _Stop(finding) from None
    finally:
        watchdog.close()
        if response is not None:
            response.close()
    if watchdog.fired:  # the body may look complete, cut short by the watchdog
        error = TimeoutError()
        finding = _failure(fetch, error, address, target.port, True)
        _failure_log(fetch, number, address, target.port, error, finding)
        raise _Stop(finding)
    logger.debug(
        "HTTP check of %s, hop %d: %s %s port %d: HTTP %d, %d bytes read",
        fetch.hostname,
        number,
        target.scheme,
        address,
        target.port,
        response.status,
        len(body),
    )
    return _Answer(status=response.status, location=location, body=body)


def _body_read(response: http.client.HTTPResponse) -> bytes:
    """At most BODY_LIMIT + 1 bytes of the body: one more than the limit tells it is longer."""
    chunks: list[bytes] = []
    size = 0
    while size <= BODY_LIMIT:
        chunk = response.read1(BODY_LIMIT + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _failure_log(
    fetch: _Fetch, number: int, address: str, port: int, error: BaseException, finding: Finding
) -> None:
    """The debug line of a failed hop: the exception's class only (its message may quote
    what the server sent)."""
    logger.debug(
        "HTTP check of %s, hop %d: %s port %d: %s, %s",
        fetch.hostname,
        number,
        address,
        port,
        error.__class__.__name__,
        finding.reason.value,
    )


def _failure(fetch: _Fetch, error: BaseException, address: str, port: int, fired: bool) -> Finding:
    """The finding for a connection that failed before a complete answer."""
    where = {"address": address, "port": port}
    if isinstance(error, NewConnectionError):  # the OSError that connect() raised is its cause
        error = error.__cause__ if error.__cause__ is not None else OSError()
    if fired or isinstance(error, TimeoutError | Urllib3TimeoutError):
        return Finding(fetch.check, Reason.HTTP_TIMEOUT, {**where, "seconds": f"{fetch.timeout:g}"})
    if isinstance(error, ConnectionRefusedError):
        return Finding(fetch.check, Reason.HTTP_REFUSED, where)
    # RemoteDisconnected (closed without a word) is a BadStatusLine, and IncompleteRead a body
    # cut short: both happen to HTTP servers too. Other parser errors mean it is not HTTP.
    not_http = isinstance(error, http.client.HTTPException | ValueError) and not isinstance(
        error, http.client.RemoteDisconnected | http.client.IncompleteRead
    )
    if not_http:
        return Finding(fetch.check, Reason.HTTP_NOT_HTTP, {**where, "hostname": fetch.hostname})
    return Finding(fetch.check, Reason.HTTP_NETWORK, where)


class _Watchdog:
    """Shuts a connection's socket down `seconds` after it was created, unless closed first.

    A shut-down socket ends any read blocked on it at once, which socket timeouts alone do
    not (they bound each wait, not their sum). The lock keeps the shutdown from hitting a
    descriptor that close() has freed (and the system may have reused).
    """

    def __init__(self, connection: HTTPConnection, seconds: float):
        self.fired = False
        self._connection = connection
        self._closed = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """At the deadline, shut down `sock`, the connected socket: the connection forgets it
        when the answer says "Connection: close" (http.client hands it to the response)."""
        with self._lock:
            self._sock = sock

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.fired = True
            sock = self._sock or self._connection.sock  # the latter while connecting
            if sock is not None:
                # socket.socket's own shutdown, also for a TLS socket: the descriptor is shut,
                # and the TLS layer sees its end in the reading thread. OSError: already gone.
                with suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop the timer and close the connection (the response is the caller's)."""
        with self._lock:
            self._closed = True
            self._timer.cancel()
            self._connection.close()
