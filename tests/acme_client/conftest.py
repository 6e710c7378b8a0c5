"""Fixtures of the ACME tests: a real Pebble validating against the live application."""

import pytest

from tests.pebble import pebble_run


@pytest.fixture
def pebble(live_server, tmp_path, settings):
    """Pebble whose HTTP-01 validations reach the live server (every name resolves to
    127.0.0.1 through pebble-challtestsrv), and the app pointed at it."""
    port = int(live_server.url.rsplit(":", 1)[1])
    with pebble_run(workdir=tmp_path / "pebble", http_port=port) as server:
        settings.ACME_DIRECTORY_URL = server.directory_url
        settings.ACME_CA_BUNDLE = str(server.ca_bundle)
        settings.ACME_ORDER_TIMEOUT = 60
        yield server
