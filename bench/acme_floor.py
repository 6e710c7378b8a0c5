"""The floor for bench/issuance.py: COUNT orders placed by the bare `acme` library from COUNT
threads, its polling sleeps capped at 50 ms, as a fast client polls.

Nothing but the protocol (RFC 8555): one account (registered before the clock starts), then per
thread a new EC P-256 key and CSR, newOrder, the HTTP-01 answer served from memory by a
threaded HTTP server on the port the CA validates on, polls of the authorization, finalize,
polls of the order, download. No database, no pre-flight, no deployment: the least time
these orders can take against this CA on this machine.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import josepy
from acme import challenges, client, crypto_util, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

POLL = 0.05
USER_AGENT = "certmgr-bench-floor"


class _Answers(BaseHTTPRequestHandler):
    """GET /.well-known/acme-challenge/<token> -> the key authorization, from memory."""

    answers: dict[str, str] = {}

    def do_GET(self) -> None:
        token = self.path.rsplit("/", 1)[-1]
        body = self.answers.get(token)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http01_responder(port: int):
    """Serve HTTP-01 answers on 127.0.0.1:port; yields the dict token -> key authorization."""
    answers: dict[str, str] = {}
    handler = type("Answers", (_Answers,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        server.shutdown()
        server.server_close()


def account_client(directory_url: str, ca_bundle: str) -> client.ClientV2:
    """A registered account's client (registration is not timed)."""
    key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=josepy.ES256, user_agent=USER_AGENT, verify_ssl=ca_bundle)
    directory = client.ClientV2.get_directory(directory_url, net)
    acme = client.ClientV2(directory, net)
    registration = acme.new_account(
        messages.NewRegistration.from_data(terms_of_service_agreed=True)
    )
    net.account = registration
    return acme


def _client_for_thread(template: client.ClientV2, ca_bundle: str) -> client.ClientV2:
    """The same account, a network object of its own (nonces are per connection pool)."""
    net = client.ClientNetwork(
        template.net.key,
        account=template.net.account,
        alg=josepy.ES256,
        user_agent=USER_AGENT,
        verify_ssl=ca_bundle,
    )
    return client.ClientV2(template.directory, net)


def _retrying(call):
    """Pebble refuses 5 % of nonces on purpose: send again, as every client must (RFC 8555
    6.5: a fresh nonce comes with the error). The library itself retries once."""
    for attempt in range(5):
        try:
            return call()
        except messages.Error as error:
            if error.code != "badNonce" or attempt == 4:
                raise


def _post_as_get_retrying(acme: client.ClientV2, url: str):
    # The library's own POST-as-GET (RFC 8555 section 6.3).
    return _retrying(lambda: acme._post_as_get(url))


def order_one(acme: client.ClientV2, hostname: str, answers: dict[str, str]) -> str:
    """One certificate for `hostname`; returns its PEM chain."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    csr_pem = crypto_util.make_csr(key_pem, [hostname])
    order = _retrying(lambda: acme.new_order(csr_pem))
    for authorization in order.authorizations:
        challenge = next(
            c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)
        )
        response, validation = challenge.response_and_validation(acme.net.key)
        answers[challenge.chall.encode("token")] = validation
        _retrying(lambda c=challenge, r=response: acme.answer_challenge(c, r))
    for authorization in order.authorizations:
        while True:
            current, _ = _retrying(lambda a=authorization: acme.poll(a))
            if current.body.status == messages.STATUS_VALID:
                break
            if current.body.status == messages.STATUS_INVALID:
                raise RuntimeError(f"{hostname}: validation failed")
            time.sleep(POLL)
    _retrying(lambda: acme.begin_finalization(order))
    while True:
        body = messages.Order.from_json(_post_as_get_retrying(acme, order.uri).json())
        if body.status == messages.STATUS_VALID and body.certificate:
            return _post_as_get_retrying(acme, body.certificate).text
        if body.status == messages.STATUS_INVALID:
            raise RuntimeError(f"{hostname}: order invalid")
        time.sleep(POLL)


def floor_run(
    *, hostnames: list[str], directory_url: str, ca_bundle: str, port: int, account
) -> tuple[float, int, list[str]]:
    """Place one order per hostname, one thread each; returns (seconds, issued, failures)."""
    failures: list[str] = []
    with http01_responder(port) as answers:
        clients = [_client_for_thread(account, ca_bundle) for _ in hostnames]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(hostnames)) as pool:
            futures = [
                pool.submit(order_one, acme, hostname, answers)
                for acme, hostname in zip(clients, hostnames, strict=True)
            ]
            issued = 0
            for hostname, future in zip(hostnames, futures, strict=True):
                try:
                    future.result()
                    issued += 1
                except Exception as error:  # reported, not retried (as the other phases)
                    failures.append(f"{hostname}: {error}")
        seconds = time.perf_counter() - started
    return seconds, issued, failures
