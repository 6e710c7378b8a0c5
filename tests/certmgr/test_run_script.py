"""scripts/run, what `make run` starts: the settings it derives, and a clean stop on SIGTERM
and Ctrl-C (SIGINT) with nothing left behind (README, "Quick start").

The stop tests run the real script on a throwaway var directory (SQLite database, filesystem
broker, edge folder) and a free port, wait until the web server answers and both workers say
they are ready, then signal it and look in /proc for every process it started.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.celery_worker import REPO_ROOT
from tests.support import log_tail, ports_free

SCRIPT = REPO_ROOT / "scripts" / "run"
START_TIMEOUT = 90.0
# A correctness bound, not a benchmark: the script gives each process 20 s before killing it.
STOP_BOUND = 30.0


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CERTMGR_", "CELERY_", "DATABASE_URL", "DJANGO_"))
        and key not in ("HOST", "PORT", "EDGE_PORT", "VERBOSE")
    }
    env.update(
        PY=sys.executable,
        CERTMGR_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'var' / 'certmgr.sqlite3'}",
        CELERY_BROKER_URL="filesystem://",
    )
    env.update(extra)
    return env


def _derived(tmp_path: Path, **extra: str) -> dict[str, str]:
    result = subprocess.run(
        [str(SCRIPT), "--env"],
        env=_environment(tmp_path, **extra),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_links_point_at_the_port_it_serves_on(tmp_path):
    assert _derived(tmp_path, PORT="8101")["CERTMGR_BASE_URL"] == "http://127.0.0.1:8101"
    assert (
        _derived(tmp_path, HOST="192.0.2.7", PORT="9000")["CERTMGR_BASE_URL"]
        == "http://192.0.2.7:9000"
    )


def test_links_to_a_server_listening_everywhere_say_localhost(tmp_path):
    assert _derived(tmp_path, HOST="0.0.0.0", PORT="9000")["CERTMGR_BASE_URL"] == (
        "http://127.0.0.1:9000"
    )
    assert _derived(tmp_path, HOST="::1", PORT="9000")["CERTMGR_BASE_URL"] == "http://[::1]:9000"


def test_a_base_url_set_by_the_operator_is_kept(tmp_path):
    derived = _derived(tmp_path, PORT="8101", CERTMGR_BASE_URL="https://certmgr.example.com")
    assert derived["CERTMGR_BASE_URL"] == "https://certmgr.example.com"


def test_verbose_turns_the_libraries_chatter_on(tmp_path):
    assert _derived(tmp_path)["CERTMGR_LOG_VERBOSE"] == "false"
    assert _derived(tmp_path, VERBOSE="1")["CERTMGR_LOG_VERBOSE"] == "true"


def _proc_stat(pid: int) -> list[str] | None:
    """Fields after "(comm)" of /proc/<pid>/stat: state, ppid, pgrp, session, ...; None when
    the process is gone (or a zombie nobody will reap: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] in ("Z", "X") else fields


def _started_by(script_pid: int) -> set[int]:
    """Every live process in the sessions of the script's children (each runs in a session
    of its own), the children included."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _proc_stat(int(entry.name))):
            stats[int(entry.name)] = fields
    sessions = {pid for pid, fields in stats.items() if int(fields[1]) == script_pid}
    return {pid for pid, fields in stats.items() if int(fields[3]) in sessions} | sessions


def _wait_until_up(process: subprocess.Popen, var: Path, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"scripts/run exited early:\n{log_tail(var / 'c.log')}"
        workers_ready = all(
            "ready." in (var / log).read_text(errors="replace")
            for log in ("worker.log", "acme-worker.log")
            if (var / log).exists()
        ) and all((var / log).exists() for log in ("worker.log", "acme-worker.log"))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                web_ready = answer.status == 200
        except OSError:
            web_ready = False
        if web_ready and workers_ready:
            return
        time.sleep(0.5)
    pytest.fail(
        f"scripts/run did not come up:\n{log_tail(var / 'worker.log')}\n"
        f"{log_tail(var / 'acme-worker.log')}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sent", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigterm-to-the-script", "ctrl-c-to-its-process-group"],
)
def test_a_stop_signal_stops_every_process_it_started(tmp_path, sent, to_group):
    port, edge_port = ports_free(2)
    env = _environment(tmp_path, HOST="127.0.0.1", PORT=str(port), EDGE_PORT=str(edge_port))
    var = tmp_path / "var"
    var.mkdir()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        env=env,
        cwd=REPO_ROOT,
        check=True,
    )
    with open(var / "c.log", "wb") as console:
        process = subprocess.Popen(
            [str(SCRIPT)],
            env=env,
            cwd=REPO_ROOT,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, as at a terminal
        )
    try:
        _wait_until_up(process, var, port)
        started = _started_by(process.pid)
        commands = " ".join(Path(f"/proc/{pid}/cmdline").read_text() for pid in started)
        # The web server, the worker with beat and its pool, the ACME worker.
        assert (
            "manage.py\x00serve" in commands and "--beat" in commands and "acme_worker" in commands
        )
        assert len(started) >= 4

        if to_group:
            os.killpg(process.pid, sent)
        else:
            process.send_signal(sent)
        returncode = process.wait(timeout=STOP_BOUND)

        left = {pid for pid in started if _proc_stat(pid) is not None}
        assert left == set(), log_tail(var / "c.log")
        assert returncode == 0, log_tail(var / "c.log")
        assert "stopped" in (var / "c.log").read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for pid in _started_by(process.pid):
            os.kill(pid, signal.SIGKILL)
