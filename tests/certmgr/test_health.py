"""GET /healthz: 200 `ok` with the database and the broker reachable, 503 `failing` otherwise,
plain text with no detail, on any Host, without login; the reason only in the log."""

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from certmgr.celery import app as celery_app
from saleschannels.models import SalesChannel
from tests.redis import redis_run
from tests.support import port_free

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: the view bounds the broker check at certmgr.health.BROKER_TIMEOUT (3 s) per try.
ANSWER_BOUND = 30.0


@pytest.fixture
def broker_url(settings):
    """Point Celery (the app /healthz checks) at a broker, the embedded default first."""
    before = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)

    def point(url: str, transport_options: dict | None = None) -> None:
        celery_app.conf.broker_url = url
        celery_app.conf.broker_transport_options = transport_options or {}

    point(settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    yield point
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = before


def assert_failing(response, caplog, reason: str) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == b"failing"
    failures = [r.getMessage() for r in caplog.records if r.name == "certmgr.health"]
    assert len(failures) == 1
    assert reason in failures[0]


def test_it_answers_ok_with_the_database_and_the_default_broker(client, broker_url):
    assert reverse("healthz") == "/healthz"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == b"ok"
    assert "no-cache" in response["Cache-Control"]


def test_it_needs_no_login_and_answers_on_any_host(client, broker_url, acme):
    SalesChannel.objects.create(institution=acme, name="Main", hostname="shop.acme.test")
    for host in ("10.1.2.3:8000", "certmgr-web", "shop.acme.test", "localhost"):
        response = client.get("/healthz", HTTP_HOST=host)
        assert (response.status_code, response.content) == (200, b"ok"), host
    assert client.head("/healthz", HTTP_HOST="10.1.2.3").status_code == 200
    assert client.post("/healthz", HTTP_HOST="10.1.2.3").status_code == 405


def test_it_fails_when_the_broker_port_is_closed(client, broker_url, caplog):
    port = port_free()
    broker_url(f"redis://127.0.0.1:{port}/0")
    with caplog.at_level(logging.ERROR, logger="certmgr.health"):
        response = client.get("/healthz")
    assert_failing(response, caplog, "broker:")
    assert str(port).encode() not in response.content


def test_it_fails_within_bounds_when_the_broker_accepts_but_never_answers(
    client, broker_url, caplog
):
    # A listening socket nobody reads: the TCP handshake completes in the backlog, PING waits.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        broker_url(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="certmgr.health"):
            response = client.get("/healthz")
        elapsed = time.monotonic() - started
    assert_failing(response, caplog, "broker:")
    assert elapsed < ANSWER_BOUND


def test_it_follows_a_real_redis_up_and_down(client, broker_url, caplog, tmp_path):
    with redis_run(workdir=tmp_path / "redis") as redis:
        broker_url(redis.url)
        response = client.get("/healthz")
        assert (response.status_code, response.content) == (200, b"ok")
    with caplog.at_level(logging.ERROR, logger="certmgr.health"):
        response = client.get("/healthz")
    assert_failing(response, caplog, "broker:")


def test_it_fails_when_the_database_is_unreachable(tmp_path):
    """In a process of its own whose DATABASE_URL points at a closed PostgreSQL port: the test
    database stays untouched, and the failure is a real refused connection."""
    script = (
        "import django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "response = Client().get('/healthz', HTTP_HOST='10.1.2.3')\n"
        "print(response.status_code, response.content.decode())\n"
    )
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "certmgr.settings",
        "CERTMGR_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://certmgr:certmgr@127.0.0.1:{port_free()}/certmgr",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "503 failing"
    assert "Health check failing: database: OperationalError" in result.stderr
