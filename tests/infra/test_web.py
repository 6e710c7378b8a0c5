"""tests/web.py: a certmgr web process on a free port, its request log, and its stop."""

from __future__ import annotations

import importlib.util
import secrets
import time
import urllib.request

import pytest

from tests.support import port_open
from tests.web import web_run


@pytest.mark.parametrize("server", ["gunicorn", "serve"])
def test_a_web_process_answers_logs_its_requests_and_stops(server, tmp_path):
    if server == "gunicorn" and importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn is not installed")
    env = {
        # The login page reads nothing from the database: an empty SQLite file will do.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CERTMGR_VAR_DIR": str(tmp_path / "var"),
    }
    with web_run(env=env, workdir=tmp_path / "web", name="web-a", server=server) as web:
        with urllib.request.urlopen(web.url + "/accounts/login/?from=test", timeout=10) as page:
            assert page.status == 200
            assert b"csrfmiddlewaretoken" in page.read()
        # The server writes its log line once the answer is sent: give it a moment.
        deadline = time.monotonic() + 10
        while ("/accounts/login/?from=test", 200) not in web.requests_logged("/accounts/"):
            assert time.monotonic() < deadline, web.log_tail()
            time.sleep(0.05)
        assert web.requests_logged("/.well-known/") == []
        port = web.port
    assert not port_open(port)
    assert (tmp_path / "web" / "web-a.log").exists()
