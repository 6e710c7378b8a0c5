"""tests/pebble.py starts a real Pebble that issues real certificates after real HTTP-01."""

from __future__ import annotations

import json
import ssl
import stat
import urllib.request
from datetime import UTC, datetime

import pytest
import requests
from acme import errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store

from tests.infra.conftest import ChallengeServer, acme_account
from tests.pebble import PebbleServer, pebble_run

NAME = "shop.example.test"


def _chain_verify(
    fullchain_pem: str, *, roots: list[x509.Certificate], name: str
) -> x509.Certificate:
    """The leaf of `fullchain_pem`, after checking it chains to `roots` and covers `name`."""
    leaf, *intermediates = x509.load_pem_x509_certificates(fullchain_pem.encode())
    verifier = (
        PolicyBuilder()
        .store(Store(roots))
        .time(datetime.now(UTC))
        .build_server_verifier(x509.DNSName(name))
    )
    verifier.verify(leaf, intermediates)
    return leaf


def test_issues_a_certificate_after_real_http01(pebble, challenge_server, issue):
    acme = acme_account(pebble.directory_url, ca_bundle=pebble.ca_bundle)

    issued = issue(acme, [NAME])

    leaf = _chain_verify(issued.fullchain_pem, roots=pebble.issuer_roots(), name=NAME)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [NAME]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    assert leaf.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) == issued.key.public_key().public_bytes(serialization.Encoding.DER, public)
    # Pebble came to the challenge server (port httpPort) asking for the name's token.
    assert any(host.split(":")[0] == NAME for host, _ in challenge_server.hits)
    assert pebble.orders_count() == 1
    assert pebble.issued_count() == 1


def test_an_unanswered_challenge_fails_validation(pebble, challenge_server, issue):
    """PEBBLE_VA_ALWAYS_VALID is off: nothing is issued without the token being served."""
    acme = acme_account(pebble.directory_url, ca_bundle=pebble.ca_bundle)

    with pytest.raises(errors.ValidationError):
        issue(acme, [NAME], answer=False)

    assert challenge_server.hits, "Pebble never came to validate"
    assert pebble.issued_count() == 0


def test_validity_seconds_makes_short_lived_certificates(challenge_server, issue, tmp_path):
    with pebble_run(
        workdir=tmp_path / "pebble", http_port=challenge_server.port, validity_seconds=300
    ) as server:
        acme = acme_account(server.directory_url, ca_bundle=server.ca_bundle)
        issued = issue(acme, [NAME])

    leaf = x509.load_pem_x509_certificates(issued.fullchain_pem.encode())[0]
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 290 <= lifetime.total_seconds() <= 310


def test_nonce_reject_percent_is_passed_to_pebble(challenge_server, tmp_path):
    with pebble_run(
        workdir=tmp_path / "pebble", http_port=challenge_server.port, nonce_reject_percent=100
    ) as server:
        with pytest.raises(messages.Error) as caught:
            acme_account(server.directory_url, ca_bundle=server.ca_bundle)
        assert caught.value.code == "badNonce"
        assert "reject 100% of good nonces" in server.log()


def test_files_config_and_https(pebble: PebbleServer):
    config = json.loads(pebble.config_path.read_text())["pebble"]
    assert config["listenAddress"] == f"127.0.0.1:{pebble.port}"
    assert config["httpPort"] == pebble.http_port
    assert "certificateValidityPeriod" not in config
    for path in (pebble.config_path, pebble.log_path, pebble.ca_bundle):
        assert path.parent == pebble.workdir
    key = pebble.workdir / config["privateKey"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # The API certificate verifies with ca_bundle under both names it is issued for.
    for host in ("127.0.0.1", "localhost"):
        context = ssl.create_default_context(cafile=str(pebble.ca_bundle))
        with urllib.request.urlopen(f"https://{host}:{pebble.port}/dir", context=context) as r:
            assert "newOrder" in json.load(r)
    # ... and not with the system roots.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(pebble.directory_url, timeout=5)


def test_stop_and_start_keep_the_ports_and_lose_the_state(
    pebble: PebbleServer, challenge_server: ChallengeServer, issue
):
    acme = acme_account(pebble.directory_url, ca_bundle=pebble.ca_bundle)
    issue(acme, [NAME])
    root_before = pebble.issuer_roots()[0]
    pid_before = pebble.pid

    pebble.stop()
    assert not pebble.running
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(pebble.directory_url, verify=str(pebble.ca_bundle), timeout=5)

    pebble.start()
    assert pebble.running and pebble.pid != pid_before
    response = requests.get(pebble.directory_url, verify=str(pebble.ca_bundle), timeout=5)
    assert response.json()["newOrder"].startswith(pebble.base_url)
    # A restarted Pebble knows nothing: new issuing root, no orders, no accounts.
    assert pebble.issuer_roots()[0] != root_before
    assert pebble.orders_count() == 0
    with pytest.raises(messages.Error) as caught:
        issue(acme, [NAME])
    assert caught.value.code == "accountDoesNotExist"
