"""Managed issuance at the default settings, next to its floor and to a certbot loop.

Against one Pebble on this machine, in one run, rounds of three phases (A F C A F C ...,
medians reported: the machines are shared and noisy, so only ratios measured side by side mean
anything):

* A, certmgr as a manager uses it: COUNT sales channels (hostnames verified, as staff
  approval records it: README, "Onboarding a hostname") are switched to *Managed* through their
  SSL pages, COUNT POSTs at once from COUNT threads of one logged-in manager, and the clock
  runs until nginx serves a certificate for every hostname (a TLS handshake with SNI to the
  edge, repeated until it answers with the hostname's certificate). Everything is real and at
  its defaults: the web server (make run's `manage.py serve`, Django's threaded server,
  answering HTTP-01 from the database), Redis, the general worker (`celery worker --queues
  celery`) and the ACME worker (`manage.py acme_worker`: one process,
  CERTMGR_ACME_CONCURRENCY threads, 16 by default),
  nginx reading the edge folder, SQLite. Each order runs the real pre-flight first: DNS and
  CAA asked of Pebble's DNS server (pebble-challtestsrv), 127.0.0.1 as the edge's address and
  the HTTP-01 self-check fetched from the web server.
* F, the floor (bench/acme_floor.py): COUNT orders placed by the bare `acme` library from
  COUNT threads, its polling sleeps capped at 50 ms, answers served from memory.
* C, certbot (PyPI's, installed by `make bench` through the `bench` extra): COUNT runs of
  `certbot certonly --standalone ... --http-01-port P` one after the other, each a new process
  as in a shell loop. A run that fails (certbot retries a badNonce once only) counts as not
  issued and is reported, not run again.

Pebble validates on port P for all three (the web server, the floor's responder and certbot
take it in turn). Each phase uses hostnames of its own, so Pebble never reuses an
authorization. Each side keeps its ACME account across rounds; certmgr's is registered in its
first round, the floor's before its clock starts. Process start-up of the long-running
services is not timed; certbot's is (it is how certbot runs).

Targets (issue: managed certificates at platform scale): A within 1.5x F, and C at least 25x A.

    make bench                                    # runs this among the others
    .venv/bin/python bench/issuance.py [--rounds R] [--count C] [--keep]

SQLite only: the bench makes its own database file, whatever DATABASE_URL says.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

COUNT = 20
ROUNDS = 3
FLOOR_TARGET = 1.5  # A / F at most
CERTBOT_TARGET = 25.0  # C / A at least
ISSUE_TIMEOUT = 180.0
SERVER_START_TIMEOUT = 30.0
POLL = 0.02
PROGRAMS = ("pebble", "pebble-challtestsrv", "redis-server", "nginx")
PASSWORD = "bench-password-4-certmgr"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
_tmp = Path(tempfile.mkdtemp(prefix="certmgr-bench-acme-"))
# Everything (secrets, database, edge, logs) in the temporary folder, shared with the web
# server and worker processes through the environment.
os.environ["CERTMGR_VAR_DIR"] = str(_tmp / "var")
# SQLite (make run's default) unless --postgres: then the DATABASE_URL given (e.g. by
# scripts/with-postgres), which must name a database that exists or can be created.
if "--postgres" not in sys.argv:
    os.environ["DATABASE_URL"] = f"sqlite:///{_tmp / 'bench-acme.sqlite3'}"
os.environ["CERTMGR_EDGE_DIR"] = str(_tmp / "edge")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certmgr.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from acme_floor import account_client, floor_run  # noqa: E402
from certbot_loop import certbot_bad_nonces, certbot_loop, certbot_path  # noqa: E402
from cryptography import x509  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from acme_client.models import AcmeOrder  # noqa: E402
from certmgr.celery import app as celery_app  # noqa: E402
from institutions.models import Institution, Membership  # noqa: E402
from saleschannels.models import SalesChannel, VerificationMethod  # noqa: E402
from saleschannels.probe import ProbeError  # noqa: E402
from tests.celery_worker import acme_worker_run, celery_worker_run  # noqa: E402
from tests.nginx import nginx_run, served_certificate  # noqa: E402
from tests.pebble import pebble_run  # noqa: E402
from tests.redis import redis_run  # noqa: E402


@dataclass
class PhaseResult:
    seconds: float
    issued: int
    failures: list[str] = field(default_factory=list)
    breakdown: str = ""


def port_free() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def process_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


class WebServer:
    """The application's web server on 127.0.0.1:port, as make run starts it (manage.py serve)."""

    def __init__(self, *, port: int, env: dict[str, str], log_path: Path):
        self.port, self.env, self.log_path = port, env, log_path
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "serve",
                    "--noreload",
                    "--skip-checks",
                    f"127.0.0.1:{self.port}",
                ],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the web server exited:\n{tail(self.log_path)}")
            if port_open(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the web server did not listen:\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self.process is not None:
            process_stop(self.process)
            self.process = None
        # certbot binds the same port next.
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def manager_create():
    """One institution and its manager, who switches every channel of the bench."""
    from django.contrib.auth import get_user_model

    institution = Institution.objects.create(name="Bench Tickets", slug="bench-tickets")
    user = get_user_model().objects.create_user("bench", password=PASSWORD)
    Membership.objects.create(user=user, institution=institution, role=Membership.Role.MANAGER)
    return institution


def channels_create(institution, round_number: int, count: int) -> list[SalesChannel]:
    """`count` channels with verified hostnames and no SSL yet, each shop on a domain of its own
    (shop.c<N>-r<round>.test), as customers' shops are: the CA's budgets at their defaults
    (README, "Rate limits (the CA's budgets)") count 50 certificates per registered domain."""
    return [
        SalesChannel.objects.create(
            institution=institution,
            name=f"shop {index} round {round_number}",
            hostname=f"shop.c{index}-r{round_number}.test",
            hostname_verified_at=timezone.now(),
            hostname_verified_by=VerificationMethod.STAFF,
        )
        for index in range(count)
    ]


def login(base_url: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base_url}/accounts/login/", timeout=30)
    response = session.post(
        f"{base_url}/accounts/login/",
        data={
            "username": "bench",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=30,
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise RuntimeError(f"login refused: {response.status_code}")
    return session


def ssl_page_save(
    base_url: str, cookies: dict[str, str], channel_id: int, *, mode: str = "managed"
) -> None:
    """What the manager's browser sends when she picks `mode` and saves the SSL page."""
    response = requests.post(
        f"{base_url}{reverse('channel_ssl', args=[channel_id])}",
        data={"mode": mode, "csrfmiddlewaretoken": cookies["csrftoken"]},
        cookies=cookies,
        timeout=60,
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise RuntimeError(f"channel {channel_id}: the SSL page answered {response.status_code}")


def served(edge_address: str, hostname: str) -> bool:
    """Whether nginx completes a handshake for `hostname` with a certificate for it.

    Only tried once the hostname's certificate file is in the edge folder (nginx cannot serve
    it before): handshakes that must fail would take the CPU the issuance needs."""
    if not (Path(os.environ["CERTMGR_EDGE_DIR"]) / f"{hostname}.crt").exists():
        return False
    try:
        certificate = served_certificate(edge_address, hostname, timeout=2.0)
    except ProbeError:
        return False
    names = certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    return hostname in names


def cpu_seconds_by_program() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process and every process it started,
    by program: where phase A's CPU went (the machine has few cores, all shared)."""
    ticks = os.sysconf("SC_CLK_TCK")
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        processes[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), command)
    ours, changed = {os.getpid()}, True
    while changed:
        changed = False
        for pid, (parent, _, _) in processes.items():
            if parent in ours and pid not in ours:
                ours.add(pid)
                changed = True
    totals: dict[str, float] = {}
    for pid in ours:
        if pid not in processes:
            continue
        _, used, command = processes[pid]
        words = b" ".join(command).decode(errors="replace")
        name = next(
            (label for marker, label in PROGRAM_LABELS if marker in words),
            Path(command[0].decode(errors="replace")).name or "?",
        )
        totals[name] = totals.get(name, 0.0) + used / ticks
    return totals


PROGRAM_LABELS = (
    ("acme_worker", "ACME worker"),
    ("celery", "general worker"),
    ("manage.py serve", "web server"),
    ("issuance.py", "bench (clients)"),
    ("pebble-challtestsrv", "DNS (challtestsrv)"),
    ("pebble", "Pebble"),
    ("redis-server", "Redis"),
    ("nginx", "nginx"),
)


def phase_certmgr(
    round_number: int, *, institution, count: int, server: "WebServer", edge_address: str
) -> PhaseResult:
    channels = channels_create(institution, round_number, count)
    warm_up = channels_create(institution, round_number + 1000, 1)[0]
    server.start()
    try:
        session = login(server.base_url)
        cookies = session.cookies.get_dict()
        # The web server is a long-running service: its start-up is not timed. A process that
        # has just started imports most of the application on its first requests; the
        # manager's first save (of another channel: no SSL, which queues a probe) warms it.
        session.get(f"{server.base_url}{reverse('channel_ssl', args=[warm_up.pk])}", timeout=60)
        ssl_page_save(server.base_url, cookies, warm_up.pk, mode="none")
        pending = {channel.hostname for channel in channels}
        cpu_before = cpu_seconds_by_program()
        started = time.perf_counter()
        started_wall = timezone.now()
        with ThreadPoolExecutor(max_workers=count) as pool:
            posts = [
                pool.submit(ssl_page_save, server.base_url, cookies, channel.pk)
                for channel in channels
            ]
            deadline = started + ISSUE_TIMEOUT
            while pending and time.perf_counter() < deadline:
                pending = {hostname for hostname in pending if not served(edge_address, hostname)}
                if pending:
                    time.sleep(POLL)
            seconds = time.perf_counter() - started
            cpu_after = cpu_seconds_by_program()
            for post in posts:
                post.result()
    finally:
        server.stop()
    failures = [
        f"{hostname}: {error or reason or 'not served within the timeout'}"
        for hostname, error, reason in SalesChannel.objects.filter(
            hostname__in=pending
        ).values_list("hostname", "renewal_last_error", "status_reason")
    ]
    breakdown = orders_breakdown([channel.pk for channel in channels], started_wall, seconds)
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    breakdown += "\n    CPU seconds: " + ", ".join(
        f"{name} {used:.2f}"
        for name, used in sorted(cpu.items(), key=lambda i: -i[1])
        if used >= 0.01
    )
    return PhaseResult(
        seconds=seconds, issued=count - len(pending), failures=failures, breakdown=breakdown
    )


def orders_breakdown(ids: list[int], started_at, seconds: float) -> str:
    """Where phase A's time went, from the orders' timestamps (the database's clock is ours)."""
    orders = list(
        AcmeOrder.objects.filter(channel_id__in=ids).values_list("created_at", "finished_at")
    )
    finished = [(c, f) for c, f in orders if f is not None]
    if not finished:
        return "no order finished"
    durations = sorted((f - c).total_seconds() for c, f in finished)
    starts = sorted((c - started_at).total_seconds() for c, _ in finished)
    last_end = max((f - started_at).total_seconds() for _, f in finished)
    return (
        f"{len(orders)} orders; one order (placed -> stored): median "
        f"{statistics.median(durations):.2f} s, max {durations[-1]:.2f} s; orders placed from "
        f"+{starts[0]:.2f} s to +{starts[-1]:.2f} s, last stored at +{last_end:.2f} s, "
        f"all served at +{seconds:.2f} s"
    )


def phase_floor(round_number: int, *, count: int, port: int, pebble, account) -> PhaseResult:
    hostnames = [f"shop{index}.r{round_number}.floor.test" for index in range(count)]
    seconds, issued, failures = floor_run(
        hostnames=hostnames,
        directory_url=pebble.directory_url,
        ca_bundle=str(pebble.ca_bundle),
        port=port,
        account=account,
    )
    return PhaseResult(seconds=seconds, issued=issued, failures=failures)


def phase_certbot(
    round_number: int, *, count: int, port: int, directory_url: str, ca_bundle: str
) -> PhaseResult:
    seconds, issued, failures = certbot_loop(
        round_number,
        count=count,
        port=port,
        directory_url=directory_url,
        ca_bundle=ca_bundle,
        workdir=_tmp,
    )
    return PhaseResult(seconds=seconds, issued=issued, failures=failures)


def failures_print(label: str, failures: list[str]) -> None:
    for failure in failures:
        print(f"    {label} not issued: {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--no-certbot", action="store_true", help="phases A and F only")
    parser.add_argument(
        "--acme-threads", type=int, help="the ACME worker's threads (default: the setting's)"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="use DATABASE_URL (PostgreSQL), not SQLite"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs) and print it"
    )
    options = parser.parse_args()
    missing = [
        name
        for name in PROGRAMS
        if not shutil.which(name) and not Path(f"/usr/sbin/{name}").exists()
    ]
    if missing:
        sys.exit(
            f"bench/issuance.py needs {', '.join(missing)}"
            " (apt-get install pebble redis-server nginx-light)"
        )
    if not options.no_certbot:
        certbot_path()

    call_command("migrate", verbosity=0)
    institution = manager_create()
    connection.close()
    port = port_free()
    count = options.count
    with (
        pebble_run(workdir=_tmp / "pebble", http_port=port) as pebble,
        redis_run(workdir=_tmp / "redis") as redis,
        nginx_run(edge_dir=Path(os.environ["CERTMGR_EDGE_DIR"]), workdir=_tmp / "nginx") as edge,
    ):
        env = {
            **os.environ,
            "CELERY_BROKER_URL": redis.url,
            "ACME_DIRECTORY_URL": pebble.directory_url,
            "ACME_CA_BUNDLE": str(pebble.ca_bundle),
            "CERTMGR_PROBE_ADDRESS": edge.address,
            # The pre-flight sees what Pebble sees: its DNS server, the edge at 127.0.0.1 and
            # HTTP-01 on the port Pebble validates on.
            "CERTMGR_DNS_RESOLVERS": pebble.dns.dns_address,
            "CERTMGR_EDGE_ADDRESSES": "127.0.0.1",
            "ACME_HTTP01_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CERTMGR_ACME_CONCURRENCY", None)  # the default, as the issue asks
        if options.acme_threads:
            env["CERTMGR_ACME_CONCURRENCY"] = str(options.acme_threads)
        settings.ACME_DIRECTORY_URL = pebble.directory_url
        celery_app.conf.broker_url = redis.url
        celery_app._after_fork()  # drop connections pooled for the default broker
        server = WebServer(port=port, env=env, log_path=_tmp / "web.log")
        floor_account = account_client(pebble.directory_url, str(pebble.ca_bundle))
        results: dict[str, list[PhaseResult]] = {"A": [], "F": [], "C": []}
        with (
            celery_worker_run(env=env, workdir=_tmp / "worker", queues=["celery"]),
            acme_worker_run(env=env, workdir=_tmp / "acme-worker") as acme_worker,
        ):
            for round_number in range(options.rounds):
                phases = [
                    (
                        "A",
                        "certmgr",
                        lambda r=round_number: phase_certmgr(
                            r,
                            institution=institution,
                            count=count,
                            server=server,
                            edge_address=edge.address,
                        ),
                    ),
                    (
                        "F",
                        "floor",
                        lambda r=round_number: phase_floor(
                            r, count=count, port=port, pebble=pebble, account=floor_account
                        ),
                    ),
                ]
                if not options.no_certbot:
                    phases.append(
                        (
                            "C",
                            "certbot",
                            lambda r=round_number: phase_certbot(
                                r,
                                count=count,
                                port=port,
                                directory_url=pebble.directory_url,
                                ca_bundle=str(pebble.ca_bundle),
                            ),
                        )
                    )
                for key, label, run in phases:
                    result = run()
                    results[key].append(result)
                    print(
                        f"round {round_number + 1} {label:8}: {result.seconds:7.2f} s, "
                        f"{result.issued}/{count} issued"
                    )
                    if result.breakdown:
                        print(f"    {result.breakdown}")
                    failures_print(label, result.failures)
            concurrency = re.search(r"concurrency: (\d+) \(thread\)", acme_worker.log())

    medians = {
        key: statistics.median(r.seconds for r in rows) for key, rows in results.items() if rows
    }
    complete = {key: all(r.issued == count for r in rows) for key, rows in results.items() if rows}
    print()
    threads = concurrency.group(1) if concurrency else "?"
    print(
        f"Pebble (default 5 % badNonce, VA without sleep) on 127.0.0.1; {os.cpu_count()} CPUs; "
        f"{connection.vendor}; ACME worker threads: {threads}; "
        f"{options.rounds} round(s), A F C alternating; medians"
    )
    names = {
        "A": "certmgr (SSL page -> served by nginx)",
        "F": f"floor (bare acme, {count} threads)",
        "C": "certbot (loop)",
    }
    for key, seconds in medians.items():
        print(
            f"{names[key]:40} {seconds:7.2f} s for {count}, {seconds / count * 1000:7.1f} ms each"
        )
    floor_ratio = medians["A"] / medians["F"]
    met = floor_ratio <= FLOOR_TARGET and complete["A"]
    print(
        f"ratio certmgr / floor:   {floor_ratio:5.2f}x (target <= {FLOOR_TARGET:g}x, all issued):"
        f" {'met' if met else 'MISSED'}"
    )
    if "C" in medians:
        print(
            f"    certbot retried {certbot_bad_nonces(_tmp)} badNonce answers from Pebble "
            "(once each; a second one in a row fails the run)"
        )
        ratio = medians["C"] / medians["A"]
        met = ratio >= CERTBOT_TARGET and complete["A"]
        print(
            f"ratio certbot / certmgr: {ratio:5.1f}x (target >= {CERTBOT_TARGET:g}x, all issued):"
            f" {'met' if met else 'MISSED'}"
        )
    if options.keep:
        print(f"logs and database kept in {_tmp}")
    else:
        shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except (Exception, KeyboardInterrupt):
        print(f"bench/issuance.py stopped; logs kept in {_tmp}", file=sys.stderr)
        raise
