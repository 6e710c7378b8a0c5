"""tests/celery_worker.py runs a real certmgr Celery worker against a real Redis."""

from __future__ import annotations

import signal
import time

import pytest

from tests.celery_worker import celery_worker_run
from tests.redis import redis_run


@pytest.fixture
def worker_env(tmp_path):
    """What a test gives the worker: a real broker, and files of its own (no repo var/)."""
    with redis_run(workdir=tmp_path / "redis") as redis:
        var = tmp_path / "var"
        yield {
            "CELERY_BROKER_URL": redis.url,
            "REDIS_PORT": str(redis.port),
            "CERTMGR_VAR_DIR": str(var),
            "DATABASE_URL": f"sqlite:///{var / 'worker.sqlite3'}",
        }


def _wait_dead(worker, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while worker.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker.running


def test_worker_answers_ping_and_survives_a_crash(worker_env, tmp_path):
    with celery_worker_run(
        env=worker_env, workdir=tmp_path / "worker", concurrency=1, queues=["celery", "acme"]
    ) as worker:
        assert worker.ping()
        log = worker.log()
        assert f"{worker.hostname} ready." in log
        # The broker the caller gave, not settings' filesystem default.
        assert f"Connected to redis://:**@127.0.0.1:{worker_env['REDIS_PORT']}/0" in log
        assert ".> acme" in log  # the queues asked for are consumed
        first_pid = worker.pid

        worker.kill(signal.SIGKILL)
        _wait_dead(worker)
        assert not worker.ping(timeout=1)

        worker.restart()
        assert worker.pid != first_pid
        assert worker.ping()
    assert not worker.running


def test_worker_with_beat(worker_env, tmp_path):
    workdir = tmp_path / "worker"
    with celery_worker_run(env=worker_env, workdir=workdir, beat=True) as worker:
        assert worker.ping()
        deadline = time.monotonic() + 10
        while "beat: Starting..." not in worker.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "beat: Starting..." in worker.log()
    # The schedule is kept in the caller's folder, not in the repository.
    assert list(workdir.glob("beat-schedule*"))
