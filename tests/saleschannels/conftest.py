"""Fixtures of the sales-channel tests: a real nginx serving the edge directory."""

import pytest

from tests.nginx import nginx_program, nginx_run
from tests.support import require_program


@pytest.fixture
def nginx_edge(tmp_path, settings):
    """nginx on 127.0.0.1 serving TLS from a fresh edge directory, which the app deploys to
    (CERTMGR_EDGE_DIR) and the probe connects to (CERTMGR_PROBE_ADDRESS)."""
    if nginx_program() is None:
        require_program("nginx")  # skips, or fails in CI
    edge_dir = tmp_path / "edge"
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    with nginx_run(edge_dir=edge_dir, workdir=workdir) as nginx:
        settings.CERTMGR_EDGE_DIR = edge_dir
        settings.CERTMGR_PROBE_ADDRESS = nginx.address
        settings.CERTMGR_PROBE_TIMEOUT = 5.0
        yield nginx
