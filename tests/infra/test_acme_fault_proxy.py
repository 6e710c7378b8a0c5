"""tests/acme_fault_proxy.py: an ACME client talks to Pebble through it, and meets the faults
the proxy is told to inject (rate limits with Retry-After, badNonce bursts, ARI)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from acme import client, crypto_util, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acme_fault_proxy import acme_fault_proxy_run
from tests.infra.conftest import acme_account
from tests.pebble import pebble_run

NAME = "shop.example.test"
RATE_LIMITED = {
    "type": "urn:ietf:params:acme:error:rateLimited",
    "detail": "too many new orders recently",
}
BAD_NONCE = {"type": "urn:ietf:params:acme:error:badNonce", "detail": "JWS has an invalid nonce"}


@pytest.fixture
def proxy(challenge_server, tmp_path):
    """The proxy in front of a Pebble without random nonce rejection, so counts are exact."""
    with (
        pebble_run(
            workdir=tmp_path / "pebble", http_port=challenge_server.port, nonce_reject_percent=0
        ) as pebble,
        acme_fault_proxy_run(upstream=pebble, workdir=tmp_path / "proxy") as proxy,
    ):
        yield proxy


def _statuses(proxy, path: str) -> list[int]:
    return [status for method, seen, status in proxy.requests if method == "POST" and seen == path]


def test_issuance_through_the_proxy_stays_on_the_proxy(proxy, issue):
    directory = requests.get(proxy.directory_url, verify=str(proxy.ca_bundle), timeout=5).json()
    urls = [value for value in directory.values() if isinstance(value, str)]
    assert urls and all(url.startswith(proxy.url + "/") for url in urls)
    assert "renewalInfo" not in directory
    # The proxy's certificate is its own: Pebble's CA does not verify it.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(proxy.directory_url, verify=str(proxy.upstream_ca_bundle), timeout=5)

    acme = acme_account(
        proxy.directory_url, ca_bundle=proxy.ca_bundle, network=client.ClientNetwork
    )
    issued = issue(acme, [NAME])

    assert acme.net.account.uri.startswith(proxy.url + "/")
    assert issued.order.uri.startswith(proxy.url + "/")
    leaf = x509.load_pem_x509_certificates(issued.fullchain_pem.encode())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [NAME]
    assert ("POST", "/order-plz", 201) in proxy.requests
    assert any(path.startswith("/certZ/") and status == 200 for _, path, status in proxy.requests)


def test_pebble_urls_are_rewritten_to_the_proxy(proxy):
    """Pebble builds URLs from Host; sent with Pebble's own Host, they are rewritten."""
    pebble_host = proxy.upstream_url.removeprefix("https://")
    response = requests.get(
        proxy.directory_url, headers={"Host": pebble_host}, verify=str(proxy.ca_bundle), timeout=5
    )
    assert proxy.upstream_url not in response.text
    assert response.json()["newOrder"] == proxy.url + "/order-plz"

    nonce = requests.head(
        proxy.url + "/nonce-plz",
        headers={"Host": pebble_host},
        verify=str(proxy.ca_bundle),
        timeout=5,
    )
    assert nonce.headers["Replay-Nonce"]
    assert nonce.headers["Link"] == f'<{proxy.url}/dir>;rel="index"'


def test_rate_limited_with_retry_after_then_success(proxy):
    acme = acme_account(
        proxy.directory_url, ca_bundle=proxy.ca_bundle, network=client.ClientNetwork
    )
    proxy.fail_next("/order-plz", 429, RATE_LIMITED, retry_after=1)
    csr = _csr()

    with pytest.raises(messages.Error) as caught:
        acme.new_order(csr)
    assert caught.value.code == "rateLimited"
    assert caught.value.detail == RATE_LIMITED["detail"]
    time.sleep(1)  # what Retry-After asked for
    order = acme.new_order(csr)

    assert order.body.status == messages.STATUS_PENDING
    assert _statuses(proxy, "/order-plz") == [429, 201]
    assert proxy.faults_pending() == 0


def test_fault_answer_carries_retry_after_and_a_nonce(proxy):
    verify = str(proxy.ca_bundle)
    proxy.fail_next("/dir", 503, RATE_LIMITED, retry_after=7, method="GET")
    proxy.fail_next("/order-plz", 429, RATE_LIMITED, retry_after=1)

    refused = requests.get(proxy.directory_url, verify=verify, timeout=5)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "7"
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json() == RATE_LIMITED
    assert requests.get(proxy.directory_url, verify=verify, timeout=5).status_code == 200

    # A faulted POST is not forwarded, but gets a fresh nonce like Pebble's own errors.
    posted = requests.post(proxy.url + "/order-plz", data=b"{}", verify=verify, timeout=5)
    assert posted.status_code == 429
    assert posted.headers["Retry-After"] == "1"
    assert posted.headers["Replay-Nonce"]


def test_bad_nonce_burst(proxy):
    """acme retries a badNonce once: a burst of three fails one call, the next gets through."""
    acme = acme_account(
        proxy.directory_url, ca_bundle=proxy.ca_bundle, network=client.ClientNetwork
    )
    proxy.fail_next("/order-plz", 400, BAD_NONCE, times=3)
    csr = _csr()

    with pytest.raises(messages.Error) as caught:
        acme.new_order(csr)
    assert caught.value.code == "badNonce"
    order = acme.new_order(csr)

    assert order.uri.startswith(proxy.url + "/")
    assert _statuses(proxy, "/order-plz") == [400, 400, 400, 201]


def test_renewal_info_window(proxy, issue):
    acme = acme_account(
        proxy.directory_url, ca_bundle=proxy.ca_bundle, network=client.ClientNetwork
    )
    cert_pem = issue(acme, [NAME]).fullchain_pem.encode()
    # Without ARI in the directory, acme has no renewal time to suggest.
    assert acme.renewal_time(cert_pem)[0] is None

    start = datetime.now(UTC) + timedelta(days=10)
    end = start + timedelta(days=2)
    proxy.renewal_info(start=start, end=end, retry_after=3600)
    # A client reads the directory once; a fresh one sees renewalInfo.
    acme = client.ClientV2(client.ClientV2.get_directory(proxy.directory_url, acme.net), acme.net)
    assert acme.directory["renewalInfo"] == proxy.url + "/renewal-info"

    renew_at, ask_again_at = acme.renewal_time(cert_pem)

    assert start.replace(microsecond=0) <= renew_at <= end
    # acme returns Retry-After as a naive local time.
    assert abs((ask_again_at - datetime.now()).total_seconds() - 3600) < 60
    ari = [(m, p, s) for m, p, s in proxy.requests if p.startswith("/renewal-info/")]
    assert len(ari) == 1 and ari[0][0] == "GET" and ari[0][2] == 200

    proxy.renewal_info_off()
    directory = requests.get(proxy.directory_url, verify=str(proxy.ca_bundle), timeout=5).json()
    assert "renewalInfo" not in directory


def test_upstream_down_is_a_502(challenge_server, tmp_path):
    with (
        pebble_run(workdir=tmp_path / "pebble", http_port=challenge_server.port) as pebble,
        acme_fault_proxy_run(upstream=pebble, workdir=tmp_path / "proxy") as proxy,
    ):
        pebble.stop()
        response = requests.get(proxy.directory_url, verify=str(proxy.ca_bundle), timeout=5)
        assert response.status_code == 502
        pebble.start()
        response = requests.get(proxy.directory_url, verify=str(proxy.ca_bundle), timeout=5)
        assert response.status_code == 200


def _csr() -> bytes:
    key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return crypto_util.make_csr(key_pem, [NAME])
