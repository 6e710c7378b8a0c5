"""A PostgreSQL database of a test's own, apart from pytest-django's test database.

Contract:

* ``postgres_database(name_prefix="certmgr")`` is a context manager yielding the URL
  (``postgres://user@host:port/<prefix>_<random>``) of a new, empty database, dropped on exit.
  - When ``DATABASE_URL`` already points at PostgreSQL (``make test-postgres``,
    scripts/with-postgres), the database is created on that server: no second cluster.
  - Otherwise a throwaway cluster is started (``postgres_run``) and removed on exit.
  Either way the database is not pytest-django's: the test reaches it through subprocesses
  (``DATABASE_URL=...``) or its own psycopg connection, never through ``django.db``.
* ``postgres_run()`` is a context manager for a throwaway cluster, as scripts/with-postgres
  makes it: ``initdb`` (trust authentication, no fsync) into a fresh folder under the system
  temporary directory, ``pg_ctl start`` on a free port of 127.0.0.1 (socket in that folder),
  as the ``postgres`` user when the tests run as root (PostgreSQL refuses root; the folder is
  handed over to it). It yields a ``PostgresServer`` (``port``, ``url(database)``, ``log()``).
  On exit: ``pg_ctl stop -m immediate`` (the process is killed if that fails) and the folder
  removed, also when the test failed.
* The server binaries come from Debian's ``/usr/lib/postgresql/<version>/bin`` (the newest);
  missing ones skip the test, or fail it when CI=true (tests.support.require_program).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from tests.support import log_tail, port_free, require_program

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# A free port can be taken by someone else before PostgreSQL binds it; try again.
START_ATTEMPTS = 3
SUPERUSER = "postgres"


def postgres_bindir() -> Path:
    """The newest Debian PostgreSQL server bin folder (initdb, pg_ctl), or skip/fail."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: [int(part) for part in path.parent.name.split(".") if part.isdigit()],
    )
    for bindir in reversed(candidates):
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            require_program(str(bindir / "initdb"))
            require_program(str(bindir / "pg_ctl"))
            return bindir
    require_program("initdb")  # not installed: skips, or fails in CI
    raise AssertionError("unreachable: require_program skips or fails")


@dataclass
class PostgresServer:
    """A running throwaway cluster on 127.0.0.1."""

    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _as_owner() -> list[str]:
    """The command prefix that runs a server program as the cluster's owner."""
    return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []


@contextmanager
def postgres_run() -> Iterator[PostgresServer]:
    """Start a throwaway cluster, yield it, stop it and remove its folder."""
    bindir = postgres_bindir()
    # Not pytest's tmp_path: that is private to root, and the server runs as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="certmgr-pg-"))
    data = folder / "data"
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, user=SUPERUSER)
        subprocess.run(
            [
                *_as_owner(),
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "--no-sync",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = None
        for _attempt in range(START_ATTEMPTS):
            server = _postgres_start(bindir, folder=folder)
            if server is not None:
                break
        else:
            raise RuntimeError(f"PostgreSQL did not start:\n{log_tail(folder / 'server.log')}")
        yield server
    finally:
        try:
            _postgres_stop(bindir, data)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _postgres_start(bindir: Path, *, folder: Path) -> PostgresServer | None:
    """A started cluster answering connections, or None when its port was taken."""
    port = port_free()
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
        # A test database: durability is not wanted, speed is.
        "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    )
    started = subprocess.run(
        [
            *_as_owner(),
            str(bindir / "pg_ctl"),
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "server.log"),
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "-o",
            options,
            "start",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if started.returncode != 0:
        return None
    return PostgresServer(port=port, folder=folder)


def _postgres_stop(bindir: Path, data: Path) -> None:
    """Immediate shutdown; the postmaster is killed if pg_ctl cannot stop it."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        stopped = (
            subprocess.run(
                [*_as_owner(), str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=STOP_TIMEOUT,
                check=False,
            ).returncode
            == 0
        )
    except subprocess.TimeoutExpired:
        stopped = False
    if not stopped and pid_file.exists():
        # The first line of postmaster.pid is the postmaster's pid; its backends exit when
        # it dies.
        with suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextmanager
def _database_created(server_url: str, *, name_prefix: str) -> Iterator[str]:
    """CREATE a database with a fresh name on the server of `server_url`; DROP it on exit."""
    name = f"{name_prefix}_{uuid.uuid4().hex[:12]}"
    admin_url = _with_database(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            # FORCE: a process the test could not stop must not keep the database alive.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def postgres_database(*, name_prefix: str = "certmgr") -> Iterator[str]:
    """A new PostgreSQL database for this test; see the module docstring."""
    existing = os.environ.get("DATABASE_URL", "")
    if existing.startswith(("postgres://", "postgresql://")):
        with _database_created(existing, name_prefix=name_prefix) as url:
            yield url
        return
    with postgres_run() as server, _database_created(server.url(), name_prefix=name_prefix) as url:
        yield url
