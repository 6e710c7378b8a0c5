"""`manage.py serve`, make run's web server: Django's, with the system's listen backlog.

Django's own server asks for a backlog of 10; connections beyond it are dropped by the kernel
and their clients retry a second later (certmgr/management/commands/serve.py). With the
server stopped (SIGSTOP), nothing is accepted, so how many connections the kernel completes
is exactly the backlog.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import urllib.request
from contextlib import ExitStack

from certmgr.management.commands.serve import BackloggedWSGIServer
from tests.web import web_run

BURST = 40  # more than Django's backlog of 10


def connections_completed(port: int, count: int) -> int:
    """Open `count` connections at once; how many the kernel completes (SYN-ACK) while
    nobody accepts them. A dropped SYN is retried only after a second: 0.5 s tells them apart."""
    completed = 0
    with ExitStack() as stack:
        for _ in range(count):
            connection = stack.enter_context(socket.socket())
            connection.settimeout(0.5)
            try:
                connection.connect(("127.0.0.1", port))
            except OSError:
                continue
            completed += 1
    return completed


def test_the_server_asks_for_the_systems_backlog():
    assert BackloggedWSGIServer.request_queue_size == socket.SOMAXCONN >= BURST


def test_a_burst_of_connections_waits_in_the_backlog_instead_of_being_dropped(tmp_path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CERTMGR_VAR_DIR": str(tmp_path / "var"),
    }
    with web_run(env=env, workdir=tmp_path / "web", server="serve") as web:
        os.kill(web.pid, signal.SIGSTOP)
        try:
            completed = connections_completed(web.port, BURST)
        finally:
            os.kill(web.pid, signal.SIGCONT)
        assert completed == BURST
        # And it goes on answering once resumed.
        with urllib.request.urlopen(web.url + "/accounts/login/", timeout=10) as page:
            assert page.status == 200
