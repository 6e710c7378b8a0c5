"""A small fault-injecting HTTPS reverse proxy in front of Pebble, for ACME client tests.

Pebble 2.4 has no ARI, no rate limits and never sends Retry-After. This proxy forwards every
request to Pebble and lets a test program what Let's Encrypt would do instead.

Contract:

* ``acme_fault_proxy_run(upstream=..., workdir=...)`` is a context manager. `upstream` is a
  running ``tests.pebble.PebbleServer`` (anything with ``directory_url`` and ``ca_bundle``).
  It serves HTTPS on a free port of 127.0.0.1 with a certificate for ``127.0.0.1`` /
  ``localhost`` signed by a CA generated into `workdir` (``proxy.ca_bundle``; clients trust
  that, not Pebble's), and yields an ``AcmeFaultProxy``; on exit it stops serving.
* Forwarding: method, path, body and headers go to Pebble over HTTPS verified with
  ``upstream.ca_bundle``. The client's Host header is kept: Pebble checks a JWS's "url"
  against ``https://<Host><path>`` and builds its own URLs from Host, so an account, order or
  certificate URL made through the proxy points at the proxy. Any URL of Pebble's own address
  left in a body or a header (Location, Link) is rewritten to the proxy's all the same. When
  Pebble does not answer, the proxy answers 502 (text/plain), like a load balancer.
* ``fail_next(path_contains, status, body, retry_after=None, times=1, method=None,
  payload_has=None)``: the next `times` requests whose path contains `path_contains` (and
  whose method is `method`, and whose JWS payload has the member `payload_has`, when given)
  are not forwarded; they get `status` with `body` as application/problem+json, a
  ``Retry-After: <seconds>`` header when `retry_after` is given, and for a POST a fresh
  ``Replay-Nonce`` from Pebble (RFC 8555 §6.5 asks servers to send one with errors too).
  Faults are consumed in the order they were added. ``payload_has="replaces"`` is how a CA
  refusing RFC 9773's `replaces` (e.g. ``alreadyReplaced``) is played.
* ``renewal_info(start=..., end=..., retry_after=None)`` turns on ARI (RFC 9773): the directory
  advertises ``"renewalInfo": "<proxy>/renewal-info"`` and ``GET /renewal-info/<cert-id>``
  answers ``{"suggestedWindow": {"start": ..., "end": ...}}`` (RFC 3339, UTC) for any
  certificate, with ``Retry-After`` when given. RFC 9773 has clients append "/<cert-id>" to
  the advertised URL, so it has no trailing slash; a doubled slash is accepted as well.
  ``renewal_info_off()`` turns it off again (the path then goes to Pebble: 404).
  ``renewal_info_asked`` lists the certificate identifiers asked for, in order.
* ``profiles({name: description})`` makes the directory list them in ``meta.profiles``
  (https://datatracker.ietf.org/doc/draft-ietf-acme-profiles/; Pebble 2.4 lists none), and a
  newOrder asking for a profile not listed is refused as Let's Encrypt refuses it (400,
  ``invalidProfile``). ``profiles(None)`` turns it off. Pebble 2.4 ignores a newOrder's
  ``profile`` and ``replaces`` members (Go's JSON decoder skips unknown ones).
* ``new_orders``: the JWS payload (decoded JSON) of every newOrder POST, in order, refused
  ones included: what the CA received, ``profile`` and ``replaces`` included. The newOrder
  URL is learnt from the directory as it passes through.
* ``requests``: (method, path, status) of every request answered, in order, faults included.
  ``url``, ``directory_url``, ``ca_bundle`` and ``log_path`` say where it is.
* ``acme_fault_proxy_run(..., pebble_deadlock_guard=True)`` forwards no newOrder while an
  authorization POST is forwarded, and the other way round (one at a time), and does nothing
  else differently. Pebble (2.4, and its main branch as of December 2026) can deadlock under
  many concurrent orders of one account: its authorization handler takes the authorization's
  write lock and then its store's read lock to look the account up (wfe.go, ``Authz``),
  while a newOrder holds the store's read lock and takes each stored authorization's read
  lock (memorystore.go, ``FindValidAuthorization``); a third request waiting for the store's
  write lock (``AddAuthorization``, ``AddChallenge``) then blocks every reader, and Pebble
  answers nothing more. Seen once in the thousand-channel scale test with 16 ACME threads
  (a goroutine dump showed exactly these three). A real CA has no such lock; this guard keeps
  a test from hanging on the test CA's bug.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

from tests.pebble import local_tls_write

UPSTREAM_TIMEOUT = 30.0
# Idle keep-alive connections are dropped after this, so no handler thread lingers.
CLIENT_TIMEOUT = 30.0
RENEWAL_INFO_PATH = "/renewal-info"
# Where Pebble serves authorizations (wfe.go: authzPath).
PEBBLE_AUTHZ = "/authZ/"
# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded;
# Content-Length is recomputed after rewriting; Accept-Encoding is dropped so that bodies come
# back uncompressed and can be rewritten.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "accept-encoding",
}


class Upstream(Protocol):
    """What the proxy needs of Pebble."""

    @property
    def directory_url(self) -> str: ...

    @property
    def ca_bundle(self) -> Path: ...


@dataclass
class Fault:
    """A programmed error answer, consumed `remaining` times."""

    path_contains: str
    status: int
    body: dict
    retry_after: int | None
    remaining: int
    method: str | None = None
    payload_has: str | None = None


@dataclass
class RenewalWindow:
    start: datetime
    end: datetime
    retry_after: int | None


@dataclass
class AcmeFaultProxy:
    """The running proxy: where it listens, what it saw, and the faults it will inject."""

    port: int
    ca_bundle: Path
    log_path: Path
    upstream_url: str
    upstream_ca_bundle: Path
    upstream_directory_path: str
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    new_orders: list[dict] = field(default_factory=list)
    renewal_info_asked: list[str] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list, repr=False)
    _renewal: RenewalWindow | None = field(default=None, repr=False)
    _profiles: dict[str, str] | None = field(default=None, repr=False)
    _new_order_path: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # pebble_deadlock_guard: held while a newOrder or an authorization POST is forwarded.
    _pebble_guard: threading.Lock | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Scheme and authority: https://127.0.0.1:<port>."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def directory_url(self) -> str:
        return self.url + self.upstream_directory_path

    def fail_next(
        self,
        path_contains: str,
        status: int,
        body: dict,
        *,
        retry_after: int | None = None,
        times: int = 1,
        method: str | None = None,
        payload_has: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` and problem `body`."""
        with self._lock:
            self._faults.append(
                Fault(
                    path_contains=path_contains,
                    status=status,
                    body=body,
                    retry_after=retry_after,
                    remaining=times,
                    method=method.upper() if method else None,
                    payload_has=payload_has,
                )
            )

    def faults_pending(self) -> int:
        """Programmed error answers not given yet."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def renewal_info(
        self, *, start: datetime, end: datetime, retry_after: int | None = None
    ) -> None:
        """Advertise ARI and suggest [start, end] as the renewal window of every certificate."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("renewal window bounds must be timezone-aware")
        with self._lock:
            self._renewal = RenewalWindow(start=start, end=end, retry_after=retry_after)

    def renewal_info_off(self) -> None:
        with self._lock:
            self._renewal = None

    def profiles(self, profiles: dict[str, str] | None) -> None:
        """List `profiles` (name -> description) in the directory's meta.profiles."""
        with self._lock:
            self._profiles = dict(profiles) if profiles is not None else None

    def _profiles_listed(self) -> dict[str, str] | None:
        with self._lock:
            return self._profiles

    def _fault_take(self, method: str, path: str, payload: dict | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.payload_has is not None and fault.payload_has not in (payload or {}):
                    continue
                if fault.path_contains in path and fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _renewal_window(self) -> RenewalWindow | None:
        with self._lock:
            return self._renewal

    def _new_order_seen(self, path: str, payload: dict | None) -> bool:
        """Whether this POST is a newOrder; if so its payload is recorded."""
        with self._lock:
            if self._new_order_path is None or path != self._new_order_path:
                return False
            self.new_orders.append(payload or {})
            return True

    def _directory_seen(self, directory: dict) -> None:
        new_order = directory.get("newOrder")
        if isinstance(new_order, str):
            with self._lock:
                self._new_order_path = urllib.parse.urlsplit(new_order).path

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))
            with self.log_path.open("a") as log:
                log.write(f"{method} {path} -> {status}\n")


@contextmanager
def acme_fault_proxy_run(
    *, upstream: Upstream, workdir: Path, pebble_deadlock_guard: bool = False
) -> Iterator[AcmeFaultProxy]:
    """Serve the proxy in front of `upstream` on a free port, yield it, stop it."""
    workdir.mkdir(parents=True, exist_ok=True)
    tls = local_tls_write(directory=workdir, name="acme-proxy")
    directory = urllib.parse.urlsplit(upstream.directory_url)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.certificate, tls.private_key)

    # Port 0: the kernel picks a free port at bind time, so no other process can take it
    # between choosing and binding.
    server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
    # The handshake is done in the connection's own thread (in _ProxyHandler.setup), so a
    # client that connects and stalls cannot block the accept loop.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    server.proxy = AcmeFaultProxy(
        port=server.server_address[1],
        ca_bundle=tls.ca_bundle,
        log_path=workdir / "acme-fault-proxy.log",
        upstream_url=f"{directory.scheme}://{directory.netloc}",
        upstream_ca_bundle=Path(upstream.ca_bundle),
        upstream_directory_path=directory.path,
        _pebble_guard=threading.Lock() if pebble_deadlock_guard else None,
    )
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="acme-fault-proxy", daemon=True
    )
    thread.start()
    try:
        yield server.proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: AcmeFaultProxy

    def handle_error(self, request, client_address) -> None:
        # A client hanging up mid-handshake or mid-keep-alive is normal; anything else is a
        # bug in the proxy and is printed as usual.
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _ProxyHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, like a real ACME server: every answer carries Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "certmgr-acme-fault-proxy"
    timeout = CLIENT_TIMEOUT
    server: _ProxyServer

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        # Requests are recorded in proxy.requests and the proxy's log file instead.
        pass

    @property
    def proxy(self) -> AcmeFaultProxy:
        return self.server.proxy

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        method, path = self.command, self.path
        payload = _jws_payload(body) if method == "POST" else None
        new_order = method == "POST" and self.proxy._new_order_seen(path, payload)

        fault = self.proxy._fault_take(method, path, payload)
        if fault is None and new_order:
            fault = self._profile_refusal(payload)
        if fault is not None:
            headers = [("Content-Type", "application/problem+json")]
            if fault.retry_after is not None:
                headers.append(("Retry-After", str(fault.retry_after)))
            if method == "POST":
                nonce = self._upstream_nonce()
                if nonce:
                    headers.append(("Replay-Nonce", nonce))
            self._reply(fault.status, headers, json.dumps(fault.body).encode())
            return

        window = self.proxy._renewal_window()
        if window is not None and path.startswith(RENEWAL_INFO_PATH + "/") and method == "GET":
            with self.proxy._lock:
                self.proxy.renewal_info_asked.append(path.rsplit("/", 1)[-1])
            self._renewal_info_reply(window)
            return

        guard = self.proxy._pebble_guard
        guarded = guard is not None and (new_order or (method == "POST" and PEBBLE_AUTHZ in path))
        try:
            if guarded:
                with guard:
                    status, headers, answer = self._forward(method, path, body)
            else:
                status, headers, answer = self._forward(method, path, body)
        except OSError as error:
            self._reply(
                502, [("Content-Type", "text/plain")], f"upstream unreachable: {error}\n".encode()
            )
            return
        if method == "GET" and path == self.proxy.upstream_directory_path and status == 200:
            answer = self._directory_rewrite(json.loads(answer), window)
        self._reply(status, headers, answer)

    def _directory_rewrite(self, directory: dict, window: RenewalWindow | None) -> bytes:
        """The directory as the programmed CA has it: renewalInfo, meta.profiles."""
        self.proxy._directory_seen(directory)
        if window is not None:
            directory["renewalInfo"] = self.proxy.url + RENEWAL_INFO_PATH
        profiles = self.proxy._profiles_listed()
        if profiles is not None:
            directory.setdefault("meta", {})["profiles"] = profiles
        return json.dumps(directory, indent=3).encode()

    def _profile_refusal(self, payload: dict | None) -> Fault | None:
        """A newOrder asking for a profile the directory does not list, refused as Let's
        Encrypt refuses it (when profiles are listed at all)."""
        profiles = self.proxy._profiles_listed()
        asked = (payload or {}).get("profile")
        if profiles is None or not asked or asked in profiles:
            return None
        return Fault(
            path_contains="",
            status=400,
            body={
                "type": "urn:ietf:params:acme:error:invalidProfile",
                "detail": f"profile {asked!r} is not offered",
            },
            retry_after=None,
            remaining=1,
        )

    def _renewal_info_reply(self, window: RenewalWindow) -> None:
        document = {
            "suggestedWindow": {
                "start": _rfc3339(window.start),
                "end": _rfc3339(window.end),
            }
        }
        headers = [("Content-Type", "application/json")]
        if window.retry_after is not None:
            headers.append(("Retry-After", str(window.retry_after)))
        self._reply(200, headers, json.dumps(document).encode())

    def _forward(self, method: str, path: str, body: bytes) -> tuple[int, list, bytes]:
        """Pebble's answer, with its own URLs rewritten to the proxy's."""
        upstream = urllib.parse.urlsplit(self.proxy.upstream_url)
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP
        }
        connection = self._upstream_connection(upstream)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            status = response.status
            response_headers = response.getheaders()
        finally:
            connection.close()
        own, ours = self.proxy.upstream_url, self.proxy.url
        rewritten = [
            (name, value.replace(own, ours))
            for name, value in response_headers
            if name.lower() not in _HOP_BY_HOP
        ]
        return status, rewritten, answer.replace(own.encode(), ours.encode())

    def _upstream_nonce(self) -> str | None:
        """A fresh nonce from Pebble's newNonce, or None when Pebble does not answer."""
        upstream = urllib.parse.urlsplit(self.proxy.upstream_url)
        with suppress(OSError, ValueError, KeyError):
            connection = self._upstream_connection(upstream)
            try:
                connection.request("GET", self.proxy.upstream_directory_path)
                directory = json.loads(connection.getresponse().read())
                nonce_path = urllib.parse.urlsplit(directory["newNonce"]).path
                connection.request("HEAD", nonce_path)
                response = connection.getresponse()
                response.read()
                return response.getheader("Replay-Nonce")
            finally:
                connection.close()
        return None

    def _upstream_connection(
        self, upstream: urllib.parse.SplitResult
    ) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(self.proxy.upstream_ca_bundle))
        return http.client.HTTPSConnection(
            upstream.hostname, upstream.port, context=context, timeout=UPSTREAM_TIMEOUT
        )

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.proxy._record(self.command, self.path, status)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        # 204 and 304 have no body and no length (RFC 9110 §8.6).
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)


def _jws_payload(body: bytes) -> dict | None:
    """The JSON payload of a flattened JWS request body (RFC 8555 §6.2), or None (POST-as-GET,
    anything unreadable)."""
    try:
        encoded = json.loads(body)["payload"]
        if not encoded:
            return None
        decoded = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, KeyError, TypeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
