"""A real nginx (Debian's nginx-light) serving TLS from an edge directory, for tests.

Contract:

* ``nginx_run(edge_dir=..., workdir=..., acme_upstream=None)`` is a context manager that
  writes a config into `workdir` (error log, access log, temp paths all inside it), starts
  ``nginx -p workdir -c nginx.conf -e error.log -g "daemon off; pid ..."`` (the master stays
  our child), waits until both ports accept connections and a worker runs, and yields an
  ``NginxEdge``; on exit it stops nginx (SIGTERM, SIGKILL after a grace period) and waits.
  ``config=`` runs another config instead (deploy/nginx.conf pointed at loopback).
* TLS server on 127.0.0.1:<free port>: ``ssl_certificate <edge>/$edge_name.crt`` and the
  matching key, where $edge_name is $ssl_server_name passed through the same map as
  deploy/nginx.conf (only a plain DNS name becomes a file name). The worker loads them at
  every handshake, exactly like production. ``user root;`` only when the tests run as root,
  because the worker then has to read keys of mode 0600 owned by root.
* Plain HTTP server on another free port: ``/.well-known/`` is proxied to `acme_upstream`
  (e.g. "http://127.0.0.1:8123") with the Host header kept, or answered 404 without one.
  `acme_upstream` may also be a list of "host:port" addresses: an ``upstream`` block that
  nginx balances round-robin, as a load balancer in front of several web processes.
  The TLS server does the same for ``/.well-known/`` (Apple fetches its domain-association
  file over HTTPS), as deploy/nginx.conf does.
* ``served_certificate(address, hostname)`` does a real handshake with SNI and returns the
  leaf (no verification); ``sni_handshake_raw()`` sends any bytes as SNI, for attack tests.
* The caller checks that nginx is installed (tests.support.require_program).
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cryptography import x509

from saleschannels.probe import probe_served_certificate
from tests.support import port_free, port_open, program_path

# (tls_port, http_port) -> nginx.conf text
ConfigMaker = Callable[[int, int], str]

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# A free port can be taken by someone else before nginx binds it; try again with new ones.
START_ATTEMPTS = 3


@dataclass
class NginxEdge:
    """A running nginx: where it listens and what it serves."""

    tls_port: int
    http_port: int
    edge_dir: Path
    workdir: Path
    process: subprocess.Popen

    @property
    def address(self) -> str:
        """host:port of the TLS server, the format of CERTMGR_PROBE_ADDRESS."""
        return f"127.0.0.1:{self.tls_port}"

    @property
    def http_address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        """The master process; a reload (SIGHUP) would keep it but replace the workers."""
        return self.process.pid

    def worker_pids(self) -> set[int]:
        """Worker processes of the master; they change when nginx reloads its config."""
        workers = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.rpartition(")")[2].split()[1]) == self.pid:
                workers.add(int(entry.name))
        return workers

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def http_paths(workdir: Path) -> str:
    """http-level directives that keep nginx's logs and temp files inside `workdir`."""
    temp = workdir / "temp"
    return (
        f"access_log {workdir}/access.log; "
        f"client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; "
        f"fastcgi_temp_path {temp}/fastcgi; uwsgi_temp_path {temp}/uwsgi; "
        f"scgi_temp_path {temp}/scgi;"
    )


def nginx_config(
    *,
    edge_dir: Path,
    workdir: Path,
    tls_port: int,
    http_port: int,
    acme_upstream: str | Sequence[str] | None = None,
) -> str:
    """The test config: production's TLS lookup on loopback, everything else in `workdir`."""
    user = "user root;" if os.geteuid() == 0 else ""
    upstream_block = ""
    if acme_upstream and not isinstance(acme_upstream, str):
        servers = " ".join(f"server {address};" for address in acme_upstream)
        upstream_block = f"upstream certmgr_web {{ {servers} }}"
        acme_upstream = "http://certmgr_web"
    if acme_upstream:
        well_known = f"proxy_pass {acme_upstream}; proxy_set_header Host $host;"
    else:
        well_known = "return 404;"
    return f"""
{user}
worker_processes 1;
# info: nginx logs why a handshake failed at this level.
error_log {workdir}/error.log info;
events {{ worker_connections 64; }}
http {{
    {http_paths(workdir)}
    default_type text/plain;
    {upstream_block}

    # As in deploy/nginx.conf: only a plain DNS name from the SNI becomes a file name.
    map $ssl_server_name $edge_name {{
        default "";
        "~^[a-z0-9-]+(\\.[a-z0-9-]+)+$" $ssl_server_name;
    }}

    server {{
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {edge_dir}/$edge_name.crt;
        ssl_certificate_key {edge_dir}/$edge_name.key;
        location /.well-known/ {{ {well_known} }}
        location / {{ return 200 "edge $ssl_server_name\\n"; }}
    }}

    server {{
        listen 127.0.0.1:{http_port};
        location /.well-known/ {{ {well_known} }}
        location / {{ return 404; }}
    }}
}}
"""


@contextmanager
def nginx_run(
    *,
    edge_dir: Path,
    workdir: Path,
    acme_upstream: str | Sequence[str] | None = None,
    config: ConfigMaker | None = None,
) -> Iterator[NginxEdge]:
    """Start nginx serving `edge_dir`, yield it, stop it.

    `config(tls_port, http_port)` replaces the test config (e.g. with deploy/nginx.conf
    pointed at loopback); it must not set ``daemon`` or ``pid``, which the command line sets.
    """
    program = nginx_program()
    if program is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    edge_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    (workdir / "temp").mkdir(parents=True, exist_ok=True)
    if config is None:
        config = partial(_test_config, edge_dir=edge_dir, workdir=workdir, upstream=acme_upstream)
    nginx = None
    for attempt in range(START_ATTEMPTS):
        nginx = _nginx_start(program, edge_dir=edge_dir, workdir=workdir, config=config)
        if nginx is not None:
            break
        if attempt == START_ATTEMPTS - 1:
            raise RuntimeError(f"nginx did not start:\n{_log_tail(workdir)}")
    try:
        yield nginx
    finally:
        _nginx_stop(nginx.process)


def nginx_program() -> str | None:
    """nginx on PATH, or in sbin, which a non-root PATH often lacks."""
    return program_path("nginx")


def served_certificate(address: str, hostname: str, *, timeout: float = 5.0) -> x509.Certificate:
    """The leaf served at `address` for SNI `hostname` (raises ProbeError on failure)."""
    return probe_served_certificate(hostname=hostname, address=address, timeout=timeout)


def sni_handshake_raw(address: str, server_name: str, *, timeout: float = 5.0) -> None:
    """A TLS handshake sending `server_name` as SNI byte for byte, even when it is no DNS
    name (e.g. "a/../b"), as an attacker's client would; raises ssl.SSLError when refused."""

    class RawSniContext(ssl.SSLContext):
        def _encode_hostname(self, hostname):
            return hostname  # skip the IDNA encoding, which refuses "/"

    context = RawSniContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    host, _, port = address.rpartition(":")
    with (
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_name),
    ):
        pass


def _test_config(
    tls_port: int,
    http_port: int,
    *,
    edge_dir: Path,
    workdir: Path,
    upstream: str | Sequence[str] | None,
) -> str:
    return nginx_config(
        edge_dir=edge_dir,
        workdir=workdir,
        tls_port=tls_port,
        http_port=http_port,
        acme_upstream=upstream,
    )


def _nginx_start(
    program: str, *, edge_dir: Path, workdir: Path, config: ConfigMaker
) -> NginxEdge | None:
    """A started nginx, or None when it exited (a port was taken meanwhile)."""
    tls_port, http_port = port_free(), port_free()
    while http_port == tls_port:
        http_port = port_free()
    path = workdir / "nginx.conf"
    path.write_text(config(tls_port, http_port))
    # -e: errors before the config is read go to our log, not Debian's /var/log/nginx.
    # daemon off: the master stays our child, so stopping it is a signal and a wait.
    process = subprocess.Popen(
        [
            program,
            "-p",
            str(workdir),
            "-c",
            str(path),
            "-e",
            str(workdir / "error.log"),
            "-g",
            f"daemon off; master_process on; pid {workdir}/nginx.pid;",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nginx = NginxEdge(
        tls_port=tls_port,
        http_port=http_port,
        edge_dir=edge_dir,
        workdir=workdir,
        process=process,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        if port_open(tls_port) and port_open(http_port) and nginx.worker_pids():
            return nginx
        time.sleep(0.02)
    _nginx_stop(process)
    raise RuntimeError(f"nginx did not listen within {START_TIMEOUT:g} s:\n{_log_tail(workdir)}")


def _nginx_stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # SIGTERM is nginx's fast shutdown: it does not wait for idle keep-alive connections.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _log_tail(workdir: Path, lines: int = 20) -> str:
    path = workdir / "error.log"
    if not path.exists():
        return "(no error log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
