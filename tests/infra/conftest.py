"""Fixtures for the infrastructure tests: an HTTP-01 responder, Pebble, and an ACME client.

The ACME side uses the `acme` and `josepy` packages directly (not certmgr's client), so these
tests prove the test infrastructure, independently of the application code under test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import josepy as jose
import pytest
from acme import challenges, client, crypto_util, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.pebble import PebbleServer, pebble_run

# Attempts per POST on badNonce: Pebble rejects 5 % of good nonces and acme retries only once,
# which would make a dozen-request issuance fail about once in forty runs.
NONCE_ATTEMPTS = 6


@dataclass
class ChallengeServer:
    """Answers GET /.well-known/acme-challenge/<token> from `responses`, as an app would."""

    port: int
    responses: dict[str, str] = field(default_factory=dict)
    # (Host header, path) of every request, to prove Pebble really came to validate.
    hits: list[tuple[str, str]] = field(default_factory=list)


def _challenge_handler(state: ChallengeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append((self.headers.get("Host", ""), self.path))
            body = state.responses.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            # Quiet: pytest shows Pebble's log on failure, which says the same.
            pass

    return Handler


@pytest.fixture
def challenge_server() -> Iterator[ChallengeServer]:
    """A threaded http.server on a free port of 127.0.0.1: Pebble's httpPort."""
    state = ChallengeServer(port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _challenge_handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def pebble(challenge_server: ChallengeServer, tmp_path: Path) -> Iterator[PebbleServer]:
    """Pebble with its default 5 % nonce rejection, validating against challenge_server."""
    with pebble_run(workdir=tmp_path / "pebble", http_port=challenge_server.port) as server:
        yield server


class PatientNetwork(client.ClientNetwork):
    """ClientNetwork retrying a POST on badNonce a few times instead of once."""

    def post(self, *args, **kwargs):
        for attempt in range(NONCE_ATTEMPTS):
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == NONCE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")


def acme_account(
    directory_url: str, *, ca_bundle: Path, network: type[client.ClientNetwork] = PatientNetwork
) -> client.ClientV2:
    """A fresh ES256 account key registered at `directory_url`; the client that holds it."""
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = network(key, alg=jose.ES256, verify_ssl=str(ca_bundle), user_agent="certmgr-tests")
    acme = client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return acme


@dataclass
class Issued:
    key: ec.EllipticCurvePrivateKey
    fullchain_pem: str
    order: messages.OrderResource


def acme_issue(
    acme: client.ClientV2,
    names: list[str],
    *,
    challenge_server: ChallengeServer,
    answer: bool = True,
) -> Issued:
    """Order `names`, answer HTTP-01 through `challenge_server`, finalize, download.

    With answer=False the challenges are triggered but their responses are not served, so a
    real validation fails.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    order = acme.new_order(crypto_util.make_csr(key_pem, names))
    for authorization in order.authorizations:
        if authorization.body.status == messages.STATUS_VALID:
            # Pebble reuses a valid authorization of the same account half of the time.
            continue
        challenge = next(
            c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)
        )
        response, validation = challenge.response_and_validation(acme.net.key)
        if answer:
            challenge_server.responses[challenge.chall.path] = validation
        acme.answer_challenge(challenge, response)
    order = acme.poll_and_finalize(order, deadline=datetime.now() + timedelta(seconds=30))
    return Issued(key=key, fullchain_pem=order.fullchain_pem, order=order)


@pytest.fixture
def issue(challenge_server: ChallengeServer) -> Callable[..., Issued]:
    """acme_issue bound to this test's challenge server."""

    def run(acme: client.ClientV2, names: list[str], **kwargs) -> Issued:
        return acme_issue(acme, names, challenge_server=challenge_server, **kwargs)

    return run
