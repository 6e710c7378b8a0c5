"""A real redis-server (Debian's redis-server) for tests: Celery's broker.

Contract:

* ``redis_run(workdir=...)`` is a context manager. It starts ``redis-server --port <free>
  --bind 127.0.0.1 --save "" --appendonly no --dir <workdir>`` (no persistence: nothing is
  written but the log, ``<workdir>/redis.log``), waits until it answers PING, and yields a
  ``RedisServer`` with ``url`` ("redis://127.0.0.1:<port>/0"), ``port``, ``pid`` and
  ``log()``. On exit it stops the server (SIGTERM, then SIGKILL) and waits for it.
* The program is looked up with ``tests.support.require_program``: a missing one skips the
  test (fails it when CI=true) before anything starts.
* A server that does not answer within ``START_TIMEOUT`` raises RuntimeError with the log tail.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import log_tail, port_free, process_stop, require_program

START_TIMEOUT = 10.0
# A free port can be taken by someone else before redis binds it; try again with a new one.
START_ATTEMPTS = 3


@dataclass
class RedisServer:
    """A running redis-server on 127.0.0.1."""

    port: int
    workdir: Path
    log_path: Path
    _process: subprocess.Popen = field(repr=False)

    @property
    def url(self) -> str:
        """Database 0, the form CELERY_BROKER_URL takes."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self._process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def redis_run(*, workdir: Path) -> Iterator[RedisServer]:
    """Start redis-server in `workdir`, yield it, stop it."""
    program = require_program("redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    server = None
    for _attempt in range(START_ATTEMPTS):
        server = _redis_start(program, workdir=workdir)
        if server is not None:
            break
    else:
        raise RuntimeError(f"redis-server did not start:\n{log_tail(workdir / 'redis.log')}")
    try:
        yield server
    finally:
        process_stop(server._process)


def _redis_start(program: str, *, workdir: Path) -> RedisServer | None:
    """A started server answering PING, or None when it exited (the port was taken)."""
    port = port_free()
    log_path = workdir / "redis.log"
    process = subprocess.Popen(
        [
            program,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            # No RDB snapshots and no AOF: a test broker needs no persistence.
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(log_path),
            # Foreground, so the server stays our child and stopping it is a signal and a wait.
            "--daemonize",
            "no",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    server = RedisServer(port=port, workdir=workdir, log_path=log_path, _process=process)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        if _pong(port):
            return server
        time.sleep(0.02)
    process_stop(process)
    raise RuntimeError(
        f"redis-server did not answer within {START_TIMEOUT:g} s on port {port}:\n"
        f"{log_tail(log_path)}"
    )


def _pong(port: int) -> bool:
    """The server answers PING (listening alone is not enough while it loads)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False
