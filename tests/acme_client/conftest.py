"""Fixtures of the ACME tests: the fault proxy in front of Pebble, and, for the tests that run
no DNS server, a pre-flight that passes.

Tests that run a real Pebble run the real pre-flight (acme_client/preflight.py) against its
DNS server, pebble-challtestsrv (tests/conftest.py's `pebble` fixture points the app at it);
only the unit tests, which fake the network, use `preflight_passes`.
"""

import pytest

from acme_client import preflight
from saleschannels.findings import Check, Finding, Reason
from tests.acme_fault_proxy import acme_fault_proxy_run


@pytest.fixture
def preflight_passes(monkeypatch):
    """The DNS, CAA and HTTP-01 checks pass for every hostname, as they would for one that
    points at the edge (127.0.0.1) with no CAA record; returns the hostnames checked, in
    order (one per pre-flight run)."""
    checked: list[str] = []

    def passing(channel) -> list[Finding]:
        checked.append(channel.hostname)
        hostname = channel.hostname
        return [
            Finding(Check.DNS, Reason.DNS_EDGE, {"hostname": hostname, "addresses": ["127.0.0.1"]}),
            Finding(Check.CAA, Reason.CAA_NONE, {"hostname": hostname}),
            Finding(
                Check.HTTP,
                Reason.HTTP_OK,
                {"url": f"http://{hostname}/.well-known/acme-challenge/self-check"},
            ),
        ]

    monkeypatch.setattr(preflight, "channel_preflight", passing)
    return checked


@pytest.fixture
def proxy(pebble, tmp_path, settings):
    """tests/acme_fault_proxy.py in front of Pebble, and the app pointed at it."""
    with acme_fault_proxy_run(upstream=pebble, workdir=tmp_path / "proxy") as server:
        settings.ACME_DIRECTORY_URL = server.directory_url
        settings.ACME_CA_BUNDLE = str(server.ca_bundle)
        yield server
