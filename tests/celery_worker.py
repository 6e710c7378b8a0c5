"""A real Celery worker (optionally with beat) for certmgr, run as a subprocess in tests.

Contract:

* ``celery_worker_run(env=..., workdir=..., beat=False, concurrency=2, queues=None)`` is a
  context manager. It starts ``<python> -m celery -A certmgr worker --loglevel INFO
  --concurrency N --pool prefork --hostname <unique>@127.0.0.1 --without-mingle
  --without-gossip`` (plus ``-Q a,b`` with `queues`, and ``--beat --schedule
  <workdir>/beat-schedule`` with `beat`) from the repository root, with `env` merged over
  os.environ, in a process group of its own. `<python>` is the interpreter running the tests
  (the project's venv). stdout and stderr go to ``<workdir>/celery-worker.log``.
* It waits until the worker logs "<hostname> ready." (consumers connected, pool started) and
  yields a ``CeleryWorker``: ``pid``, ``hostname``, ``log()`` (the text of every run),
  ``ping()`` (``celery -A certmgr inspect ping`` to this worker with the same env, True on a
  pong), ``kill(sig)`` (to the worker and its pool children) and ``restart()`` (stop, then
  start again with the same arguments; ``pid`` changes). On exit the worker is stopped:
  SIGTERM (warm shutdown: running tasks finish), SIGKILL to the whole group after
  ``STOP_TIMEOUT``, and waited for.
* A worker that is not ready within ``START_TIMEOUT`` raises RuntimeError with the log tail.
* ``acme_worker_run(env=..., workdir=..., concurrency=None)`` is the same for ``manage.py
  acme_worker`` (the "acme" queue, Celery's thread pool: one process, no pool children);
  `concurrency` overrides CERTMGR_ACME_CONCURRENCY.

What the caller passes in `env` (the worker is another process: it shares nothing but what
the environment points at):

* ``CELERY_BROKER_URL``: a real broker, e.g. ``tests.redis.redis_run(...).url``. ``ping()``
  needs a broker with broadcast (Redis); kombu's filesystem transport has none.
* ``DATABASE_URL``: a database the test process also uses, i.e. PostgreSQL or a SQLite
  *file*. pytest-django's default SQLite test database is in memory and cannot be shared
  with another process: use ``@pytest.mark.django_db(transaction=True)`` (the worker cannot
  see data inside the test's open transaction either) with a file-based test database (a
  ``TEST: {"NAME": <path>}`` in the test settings) or point DATABASE_URL at PostgreSQL (as
  ``make test-postgres`` does) and pass the *test* database's URL.
* ``CERTMGR_VAR_DIR`` (and ``SECRET_KEY``, ``CERTMGR_ENCRYPTION_KEYS``,
  ``CERTMGR_EDGE_DIR`` ... as the test needs): the worker must decrypt what the test
  process encrypted, and must not write into the repository's var/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

from certmgr.celery import app as celery_app

# The repository root: where `-A certmgr` is importable and manage.py lives.
REPO_ROOT = Path(__file__).resolve().parent.parent

START_TIMEOUT = 60.0
# A warm shutdown waits for running tasks; past this the worker is killed.
STOP_TIMEOUT = 20.0
PING_TIMEOUT = 30.0
LOG_TAIL_LINES = 40


@dataclass
class CeleryWorker:
    """A running `celery worker` subprocess for certmgr."""

    hostname: str
    workdir: Path
    log_path: Path
    command: list[str]
    env: dict[str, str] = field(repr=False)
    _process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The worker's main process (its pool children are in its process group)."""
        if self._process is None:
            raise RuntimeError("the worker is not started")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def ping(self, *, timeout: float = 5.0) -> bool:
        """`celery inspect ping` to this worker only, through the broker; True on a pong."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "certmgr",
                "inspect",
                "ping",
                "--destination",
                self.hostname,
                "--timeout",
                str(timeout),
            ],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=PING_TIMEOUT + timeout,
        )
        return result.returncode == 0 and "pong" in result.stdout

    def kill(self, sig: int = signal.SIGKILL, *, group: bool = True) -> None:
        """Send `sig` to the worker and its pool children (group=False: the main process only).

        SIGKILL to the group is a crash of the whole worker: tasks in flight are lost, and
        with acks_late they return to the queue. The process is reaped when it exits.
        """
        if not self.running:
            return
        if group:
            os.killpg(self.pid, sig)
        else:
            os.kill(self.pid, sig)

    def restart(self) -> None:
        """Stop the worker (if it still runs) and start it again; wait until it is ready."""
        self.stop()
        self.start()

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the worker is already running")
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A group of its own: the pool children are stopped (or crashed) with it,
                # and a signal to the test's terminal group does not reach it.
                start_new_session=True,
            )
        self._wait_ready(offset)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), SIGKILL to the group after STOP_TIMEOUT, wait."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _group_kill(process.pid)
        process.wait()
        # Pool children outlive a main process killed alone (kill(group=False)).
        _group_kill(process.pid)
        self._process = None

    def _wait_ready(self, offset: int) -> None:
        """Until this run's log says "<hostname> ready.", or the process dies."""
        assert self._process is not None
        marker = f"{self.hostname} ready."
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if marker in log.read().decode(errors="replace"):
                    return
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(
                    f"the Celery worker exited with {code} before it was ready:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the Celery worker was not ready within {START_TIMEOUT:g} s:\n{self.log_tail()}"
        )


@contextmanager
def celery_worker_run(
    *,
    env: dict[str, str],
    workdir: Path,
    beat: bool = False,
    concurrency: int = 2,
    queues: Sequence[str] | None = None,
) -> Iterator[CeleryWorker]:
    """Start a certmgr Celery worker (and beat), yield it once ready, stop it."""
    workdir.mkdir(parents=True, exist_ok=True)
    # Unique, so that ping and control commands reach this worker and no other one on the
    # same broker.
    hostname = f"certmgr-test-{uuid.uuid4().hex[:8]}@127.0.0.1"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "certmgr",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--hostname",
        hostname,
        # Mingle waits for other workers' replies at start and gossip listens to them: both
        # only slow a test's lone worker down.
        "--without-mingle",
        "--without-gossip",
    ]
    if queues:
        command += ["--queues", ",".join(queues)]
    if beat:
        command += ["--beat", "--schedule", str(workdir / "beat-schedule")]
    with _worker_running(hostname, workdir, "celery-worker.log", command, env) as worker:
        yield worker


@contextmanager
def acme_worker_run(
    *, env: dict[str, str], workdir: Path, concurrency: int | None = None
) -> Iterator[CeleryWorker]:
    """Start `manage.py acme_worker` (the "acme" queue on a thread pool of
    CERTMGR_ACME_CONCURRENCY, or `concurrency`, threads), yield it once ready, stop it."""
    workdir.mkdir(parents=True, exist_ok=True)
    hostname = f"certmgr-acme-{uuid.uuid4().hex[:8]}@127.0.0.1"
    command = [
        sys.executable,
        "manage.py",
        "acme_worker",
        "--loglevel",
        "INFO",
        "--hostname",
        hostname,
        "--without-mingle",
        "--without-gossip",
    ]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    with _worker_running(hostname, workdir, "acme-worker.log", command, env) as worker:
        yield worker


@contextmanager
def _worker_running(
    hostname: str, workdir: Path, log_name: str, command: list[str], env: dict[str, str]
) -> Iterator[CeleryWorker]:
    worker = CeleryWorker(
        hostname=hostname,
        workdir=workdir,
        log_path=workdir / log_name,
        command=command,
        # Unbuffered, so the log shows "ready" (and a crash's last words) at once.
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def worker_env(*, tmp_path: Path, broker_url: str, pebble, http_port: int) -> dict[str, str]:
    """What a worker process needs to issue against `pebble` for the live application on
    `http_port`: the test database, the broker, the same secrets (it must decrypt what the
    test encrypted), its own var/ and edge folders, and a pre-flight that sees what Pebble
    sees (Pebble's DNS server, 127.0.0.1 as the edge's address, HTTP-01 on that port)."""
    from django.conf import settings

    return {
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CERTMGR_VAR_DIR": str(tmp_path / "worker-var"),
        "SECRET_KEY": settings.SECRET_KEY,
        "CERTMGR_ENCRYPTION_KEYS": ",".join(settings.CERTMGR_ENCRYPTION_KEYS),
        "CERTMGR_EDGE_DIR": str(tmp_path / "edge"),
        "ACME_DIRECTORY_URL": pebble.directory_url,
        "ACME_CA_BUNDLE": str(pebble.ca_bundle),
        "CERTMGR_DNS_RESOLVERS": pebble.dns.dns_address,
        "CERTMGR_EDGE_ADDRESSES": "127.0.0.1",
        "ACME_HTTP01_PORT": str(http_port),
    }


def _group_kill(pgid: int) -> None:
    """SIGKILL what is left of the process group we created for the worker."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def database_url() -> str:
    """The URL of the test database, for the worker process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@contextmanager
def broker(url: str):
    """Send this process's tasks to `url` (the session default is an unconsumed memory
    broker); Celery keeps pooled connections, so they are dropped both ways."""
    previous = celery_app.conf.broker_url, celery_app.conf.broker_transport_options
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = {"visibility_timeout": 5}
    celery_app._after_fork()
    try:
        yield
    finally:
        celery_app.conf.broker_url, celery_app.conf.broker_transport_options = previous
        celery_app._after_fork()
