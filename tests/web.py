"""A certmgr web process (the WSGI application in a server of its own), for tests.

Contract:

* ``web_run(env=..., workdir=..., name="web", server=None)`` is a context manager. It
  starts the application on a free port of 127.0.0.1 from the repository root, with `env`
  merged over os.environ, in a process group of its own: gunicorn (``python -m gunicorn
  certmgr.wsgi``, one gthread worker, access log on stdout) when it is installed, as in
  production, else ``manage.py serve --noreload`` (make run's server: Django's, with a
  larger listen backlog), which also logs every request (``server="gunicorn"`` or
  ``"serve"`` chooses). stdout and stderr go to
  ``<workdir>/<name>.log``.
* It waits until ``GET /accounts/login/`` answers 200 on the back-office host 127.0.0.1 and
  yields a ``WebProcess``: ``port``, ``url``, ``log()``, ``log_tail()`` and
  ``requests_logged(prefix)``, the (path, status) of every request the process logged whose
  path starts with `prefix` (the request line and status are in the same place in both
  servers' logs). On exit it is stopped (SIGTERM, SIGKILL to the group after STOP_TIMEOUT)
  and waited for, also when the test failed.
* A process that exits or does not answer within START_TIMEOUT raises RuntimeError with the
  log tail; a port taken meanwhile is retried with another one.

The caller passes what the process shares with the others in `env`: ``DATABASE_URL``,
``CELERY_BROKER_URL``, ``SECRET_KEY`` (sessions and CSRF tokens valid on every process),
``CERTMGR_ENCRYPTION_KEYS``, ``CERTMGR_VAR_DIR`` (not the repository's var/), ...
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import log_tail, port_free

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3

# `"GET /path HTTP/1.0" 200` in gunicorn's access log and in Django's server's request log alike.
_REQUEST_LINE = re.compile(r'"[A-Z]+ (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def server_command(port: int, server: str | None = None) -> list[str]:
    """gunicorn when installed (production's server), else Django's development server."""
    if server is None:
        server = "gunicorn" if importlib.util.find_spec("gunicorn") is not None else "serve"
    if server == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "certmgr.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--error-logfile",
            "-",
        ]
    return [
        sys.executable,
        "manage.py",
        "serve",
        "--noreload",
        f"127.0.0.1:{port}",
    ]


@dataclass
class WebProcess:
    """A running certmgr web server."""

    name: str
    port: int
    log_path: Path
    _process: subprocess.Popen = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self) -> str:
        return log_tail(self.log_path)

    def requests_logged(self, prefix: str = "/") -> list[tuple[str, int]]:
        """(path, status) of each logged request whose path starts with `prefix`."""
        return [
            (match["path"], int(match["status"]))
            for match in _REQUEST_LINE.finditer(self.log())
            if match["path"].startswith(prefix)
        ]


@contextmanager
def web_run(
    *, env: dict[str, str], workdir: Path, name: str = "web", server: str | None = None
) -> Iterator[WebProcess]:
    """Start a certmgr web process, yield it once it answers, stop it."""
    workdir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    web = None
    try:
        for _attempt in range(START_ATTEMPTS):
            web = _web_start(name=name, workdir=workdir, env=full_env, server=server)
            if web._process.poll() is None:
                break
        else:
            raise RuntimeError(f"{name} did not start:\n{web.log_tail() if web else ''}")
        yield web
    finally:
        if web is not None:
            _web_stop(web._process)


def _web_start(*, name: str, workdir: Path, env: dict[str, str], server: str | None) -> WebProcess:
    """A started process answering HTTP, or one that exited (its port was taken)."""
    port = port_free()
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            server_command(port, server),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # A group of its own: gunicorn's worker is stopped with its master.
            start_new_session=True,
        )
    web = WebProcess(name=name, port=port, log_path=log_path, _process=process)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if "already in use" in web.log():
                return web
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{web.log_tail()}")
        if _answers(web.url + "/accounts/login/"):
            return web
        time.sleep(0.1)
    _web_stop(process)
    raise RuntimeError(f"{name} did not answer within {START_TIMEOUT:g} s:\n{web.log_tail()}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:  # refused, reset, or an HTTP error status
        return False


def _web_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):  # killed below
            process.wait(timeout=STOP_TIMEOUT)
    # gunicorn's worker (or anything the master left behind) goes with the group.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
