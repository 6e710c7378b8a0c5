"""Managed issuance through the worker against a `certbot certonly --standalone` loop.

Against one Pebble on this machine, issue COUNT certificates for COUNT managed sales
channels through the real stack (the application's web server answering HTTP-01 from the
database, Redis, a Celery worker process), and in the same run COUNT certificates with a
`certbot certonly --standalone` loop, the way an operator would script it. Prints both wall
times, how many were issued, the ratio certbot / certmgr and the per-certificate averages.
Target: certmgr >= 15x faster than the certbot loop, COUNT of COUNT issued, on 2 cores.

The stack (helpers from tests/, the same ones the worker tests drive):

* one Pebble (tests/pebble.py: PEBBLE_VA_NOSLEEP=1, Pebble's default 5 % badNonce rejection
  left on, challenges really validated) whose httpPort is a port P of 127.0.0.1;
* phase A, certmgr: `manage.py runserver --noreload 127.0.0.1:P` (threaded) so Pebble's
  validations reach the application, redis-server and `celery worker --concurrency N`, all on
  one SQLite file in a temporary CERTMGR_VAR_DIR. COUNT institutions each get one managed
  channel whose hostname is verified (README, "Onboarding a hostname": nothing is ordered for
  an unproved name), then the clock runs from the first claim + `issue_certificate.delay()`
  until every channel has a managed active certificate in the database (or has recorded a
  failure, or waits on a failed pre-flight check). Each issuance runs the real pre-flight
  first, as in production: DNS and CAA asked of Pebble's DNS server (pebble-challtestsrv,
  CERTMGR_DNS_RESOLVERS), 127.0.0.1 as the edge's address (CERTMGR_EDGE_ADDRESSES) and the
  HTTP-01 self-check fetched from the web server on port P (ACME_HTTP01_PORT), all timed.
  The web server is stopped afterwards: certbot needs port P;
* phase B, certbot (PyPI's, installed by `make bench` through the `bench` extra): COUNT runs
  of `certbot certonly --standalone ... --http-01-port P` one after the other, each a new
  process as in a shell loop, with REQUESTS_CA_BUNDLE trusting Pebble. A run that fails
  (certbot retries a badNonce once only) counts as not issued and is reported; it is not run
  again, since a plain operator loop would not either.

Phases alternate A B A B ... (ROUNDS rounds, medians reported: machines are noisy). Each
round uses hostnames of its own, so Pebble cannot reuse an earlier round's authorization.
Both sides keep their ACME account across rounds (certmgr in its database, certbot in its
config dir), so each registers in the first round only (certmgr's pool processes, finding no
account yet, may each register one at once; one is kept). The worker's start-up is not
timed (it is a long-running service); certbot's process start-up is (it is how certbot runs).

    make bench                                    # runs this after scale.py and edge.py
    .venv/bin/python bench/issuance.py [--concurrency N] [--rounds R] [--count C]

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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

COUNT = 20
ROUNDS = 3
# Measured on the 2-core machine, phase A alone (--no-certbot), medians of 5 or 7 rounds in
# five sweeps each, for 20 certificates: 4 pool processes 1.36, 1.43, 1.55, 1.58, 1.68 s;
# 2 processes 1.40, 1.82, 1.83, 1.97, 1.99 s (8: 1.31 s in one sweep, within the noise).
# One issuance waits on Pebble part of the time, so 4 overlap those waits better than 2.
CONCURRENCY = 4
TARGET_RATIO = 15.0
# Phase A gives up after this long (a channel whose issuance failed is counted at once).
ISSUE_TIMEOUT = 180.0
CERTBOT_TIMEOUT = 120.0
SERVER_START_TIMEOUT = 30.0
POLL = 0.02
PROGRAMS = ("pebble", "pebble-challtestsrv", "redis-server")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = Path(tempfile.mkdtemp(prefix="certmgr-bench-acme-"))
# Everything (secrets, database, edge, logs) in the temporary folder, shared with the web
# server and worker processes through the environment.
os.environ["CERTMGR_VAR_DIR"] = str(_tmp / "var")
os.environ["DATABASE_URL"] = f"sqlite:///{_tmp / 'bench-acme.sqlite3'}"
os.environ["CERTMGR_EDGE_DIR"] = str(_tmp / "edge")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certmgr.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Q  # noqa: E402
from django.utils import timezone  # noqa: E402

from acme_client.models import AcmeOrder  # noqa: E402
from acme_client.services import channel_issuance_claim  # noqa: E402
from acme_client.tasks import issue_certificate  # noqa: E402
from certificates.models import Certificate  # noqa: E402
from certmgr.celery import app as celery_app  # noqa: E402
from institutions.models import Institution  # noqa: E402
from saleschannels.models import ChannelStatus, SalesChannel, VerificationMethod  # noqa: E402
from tests.celery_worker import celery_worker_run  # noqa: E402
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
    """The application's web server on 127.0.0.1:port (Django's threaded runserver)."""

    def __init__(self, *, port: int, env: dict[str, str], log_path: Path):
        self.port, self.env, self.log_path = port, env, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "runserver",
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


def channels_create(round_number: int, count: int) -> list[int]:
    """`count` institutions, each with one managed channel shop<N>[.r<round>].bench.test."""
    suffix = "" if round_number == 0 else f".r{round_number}"
    ids = []
    for index in range(count):
        institution = Institution.objects.create(
            name=f"Bench {round_number}-{index}", slug=f"bench-{round_number}-{index}"
        )
        channel = SalesChannel.objects.create(
            institution=institution,
            name=f"shop {index}",
            hostname=f"shop{index}{suffix}.bench.test",
            ssl_mode=SalesChannel.SslMode.MANAGED,
            hostname_verified_at=timezone.now(),
            hostname_verified_by=VerificationMethod.STAFF,
        )
        ids.append(channel.pk)
    return ids


# A channel that will not be issued in this phase: the CA refused (a recorded failure), or a
# pre-flight check failed (the channel waits, and no order is placed).
FAILED = Q(renewal_failures__gt=0) | Q(
    status__in=[ChannelStatus.WAITING_DNS, ChannelStatus.WAITING_CAA, ChannelStatus.WAITING_HTTP]
)


def phase_certmgr(round_number: int, *, count: int, server: WebServer) -> PhaseResult:
    ids = channels_create(round_number, count)
    server.start()
    try:
        started_at = timezone.now()
        started = time.perf_counter()
        for channel_id in ids:
            claim = channel_issuance_claim(channel_id=channel_id)
            assert claim is not None, channel_id
            issue_certificate.delay(channel_id, claim)
        deadline = started + ISSUE_TIMEOUT
        channels = SalesChannel.objects.filter(pk__in=ids)
        while True:
            issued = channels.filter(active_certificate__source=Certificate.Source.MANAGED).count()
            failed = channels.filter(FAILED).count()
            if issued + failed >= count or time.perf_counter() > deadline:
                break
            time.sleep(POLL)
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    failures = [
        f"{hostname}: {error or reason or 'not issued within the timeout'}"
        for hostname, error, reason in channels.exclude(
            active_certificate__source=Certificate.Source.MANAGED
        ).values_list("hostname", "renewal_last_error", "status_reason")
    ]
    return PhaseResult(
        seconds=seconds,
        issued=issued,
        failures=failures,
        breakdown=orders_breakdown(ids, started_at),
    )


def orders_breakdown(ids: list[int], started_at: datetime) -> str:
    """Where phase A's time went, from the orders' timestamps (database clock = ours)."""
    orders = list(
        AcmeOrder.objects.filter(channel_id__in=ids).values_list("created_at", "finished_at")
    )
    finished = [(c, f) for c, f in orders if f is not None]
    if not finished:
        return "no order finished"
    durations = sorted((f - c).total_seconds() for c, f in finished)
    first_start = min((c - started_at).total_seconds() for c, _ in finished)
    last_start = max((c - started_at).total_seconds() for c, _ in finished)
    last_end = max((f - started_at).total_seconds() for _, f in finished)
    return (
        f"{len(orders)} orders; one order (task start -> stored): "
        f"median {statistics.median(durations):.2f} s, min {durations[0]:.2f} s, "
        f"max {durations[-1]:.2f} s, sum {sum(durations):.1f} s; "
        f"first order started at +{first_start:.2f} s, last at +{last_start:.2f} s, "
        f"last finished at +{last_end:.2f} s"
    )


def certbot_path() -> str:
    path = Path(sys.executable).parent / "certbot"
    if path.exists():
        return str(path)
    found = shutil.which("certbot")
    if found:
        return found
    sys.exit("certbot is not installed: `.venv/bin/python -m pip install -e '.[dev,bench]'`")


def phase_certbot(
    round_number: int, *, count: int, port: int, directory_url: str, ca_bundle: str
) -> PhaseResult:
    program = certbot_path()
    base = _tmp / "certbot"
    env = {**os.environ, "REQUESTS_CA_BUNDLE": ca_bundle}
    suffix = "" if round_number == 0 else f".r{round_number}"
    log_path = _tmp / f"certbot-round{round_number}.log"
    issued, failures = 0, []
    started = time.perf_counter()
    with log_path.open("ab") as log:
        for index in range(count):
            hostname = f"shop{index}{suffix}.certbot.test"
            command = [
                program,
                "certonly",
                "--standalone",
                "--non-interactive",
                "--agree-tos",
                "-m",
                "bench@example.test",
                "--server",
                directory_url,
                "--http-01-port",
                str(port),
                "--http-01-address",
                "127.0.0.1",
                "-d",
                hostname,
                "--config-dir",
                str(base / "config"),
                "--work-dir",
                str(base / "work"),
                "--logs-dir",
                str(base / "logs"),
            ]
            try:
                result = subprocess.run(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.PIPE,
                    timeout=CERTBOT_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                failures.append(f"{hostname}: certbot ran over {CERTBOT_TIMEOUT:g} s")
                continue
            log.write(result.stderr)
            live = base / "config" / "live" / hostname / "fullchain.pem"
            if result.returncode == 0 and live.exists():
                issued += 1
            else:
                failures.append(f"{hostname}: {certbot_error(result.stderr)}")
    return PhaseResult(seconds=time.perf_counter() - started, issued=issued, failures=failures)


def certbot_error(stderr: bytes) -> str:
    """What certbot said went wrong (its output carries no key material)."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    for index, line in enumerate(lines[:-1]):
        # "An unexpected error occurred:" puts the reason on the next line.
        if line == "An unexpected error occurred:":
            return f"{line} {lines[index + 1]}"[:300]
    for pattern in (r"^Detail:", r"urn:ietf:params:acme:error", r"[Ee]rror|[Ff]ailed"):
        for line in lines:
            if re.search(pattern, line):
                return line[:300]
    return (lines[-1] if lines else "no output")[:300]


def certbot_bad_nonces() -> int:
    """badNonce answers certbot retried, from its logs (one file per run, letsencrypt.log[.N]):
    the acme library logs "Retrying request after error" for each, and retries only those."""
    return sum(
        path.read_text(errors="replace").count("Retrying request after error")
        for path in (_tmp / "certbot" / "logs").glob("letsencrypt.log*")
    )


def failures_print(label: str, failures: list[str]) -> None:
    for failure in failures:
        print(f"    {label} not issued: {failure}")


def worker_task_seconds(log: str) -> list[float]:
    return [
        float(seconds)
        for seconds in re.findall(
            r"Task acme_client\.tasks\.issue_certificate\[[^\]]+\] succeeded in ([\d.]+)s", log
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument(
        "--no-certbot", action="store_true", help="phase A only (to compare concurrencies)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs) and print it"
    )
    options = parser.parse_args()
    missing = [name for name in PROGRAMS if not shutil.which(name)]
    if missing:
        sys.exit(f"bench/issuance.py needs {', '.join(missing)} (apt-get install pebble)")
    certbot_path()

    call_command("migrate", verbosity=0)
    connection.close()
    port = port_free()
    count = options.count
    with (
        pebble_run(workdir=_tmp / "pebble", http_port=port) as pebble,
        redis_run(workdir=_tmp / "redis") as redis,
    ):
        env = {
            **os.environ,
            "CELERY_BROKER_URL": redis.url,
            "ACME_DIRECTORY_URL": pebble.directory_url,
            "ACME_CA_BUNDLE": str(pebble.ca_bundle),
            "ACME_ORDER_TIMEOUT": "60",
            # The pre-flight sees what Pebble sees: its DNS server, the edge at 127.0.0.1 and
            # HTTP-01 on the port Pebble validates on.
            "CERTMGR_DNS_RESOLVERS": pebble.dns.dns_address,
            "CERTMGR_EDGE_ADDRESSES": "127.0.0.1",
            "ACME_HTTP01_PORT": str(port),
            # Pebble has no rate limits, and every round's shops share bench.test: the CA's
            # budgets (README, "Rate limits (the CA's budgets)") would queue all but 50.
            "ACME_RATE_LIMIT_NEW_ORDERS": "off",
            "ACME_RATE_LIMIT_REGISTERED_DOMAIN": "off",
            "ACME_RATE_LIMIT_DUPLICATE": "off",
            "ACME_RATE_LIMIT_FAILED_VALIDATIONS": "off",
            "PYTHONUNBUFFERED": "1",
        }
        settings.ACME_DIRECTORY_URL = pebble.directory_url
        celery_app.conf.broker_url = redis.url
        celery_app._after_fork()  # drop connections pooled for the default broker
        server = WebServer(port=port, env=env, log_path=_tmp / "web.log")
        with celery_worker_run(
            env=env, workdir=_tmp / "worker", concurrency=options.concurrency
        ) as worker:
            results: dict[str, list[PhaseResult]] = {"certmgr": [], "certbot": []}
            for round_number in range(options.rounds):
                a = phase_certmgr(round_number, count=count, server=server)
                results["certmgr"].append(a)
                print(
                    f"round {round_number + 1} certmgr: {a.seconds:6.2f} s, "
                    f"{a.issued}/{count} issued"
                )
                print(f"    {a.breakdown}")
                failures_print("certmgr", a.failures)
                if options.no_certbot:
                    continue
                b = phase_certbot(
                    round_number,
                    count=count,
                    port=port,
                    directory_url=pebble.directory_url,
                    ca_bundle=str(pebble.ca_bundle),
                )
                results["certbot"].append(b)
                print(
                    f"round {round_number + 1} certbot: {b.seconds:6.2f} s, "
                    f"{b.issued}/{count} issued"
                )
                failures_print("certbot", b.failures)
        # Read once the worker has stopped (warm shutdown): the last task has logged by then.
        task_seconds = worker_task_seconds(worker.log())

    a_time = statistics.median(r.seconds for r in results["certmgr"])
    a_issued = [r.issued for r in results["certmgr"]]
    print()
    print(
        f"Pebble (default 5 % badNonce, VA without sleep) on 127.0.0.1; {os.cpu_count()} CPUs; "
        f"SQLite; worker --concurrency {options.concurrency}; {options.rounds} round(s), "
        "A B alternating; medians"
    )
    print(
        f"certmgr (worker): {a_time:6.2f} s for {count}, {a_time / count * 1000:7.1f} ms per "
        f"certificate, issued per round {a_issued} of {count}"
    )
    if task_seconds:
        print(
            f"    worker: issue_certificate took {statistics.median(task_seconds):.2f} s "
            f"(median of {len(task_seconds)} tasks, worker log)"
        )
    if not results["certbot"]:
        print("certbot: not run (--no-certbot)")
    else:
        b_time = statistics.median(r.seconds for r in results["certbot"])
        b_issued = [r.issued for r in results["certbot"]]
        print(
            f"certbot (loop):   {b_time:6.2f} s for {count}, {b_time / count * 1000:7.1f} ms per "
            f"certificate, issued per round {b_issued} of {count}"
        )
        print(
            f"    certbot retried {certbot_bad_nonces()} badNonce answers from Pebble "
            "(once each; a second one in a row fails the run)"
        )
        ratio = b_time / a_time
        met = ratio >= TARGET_RATIO and all(n == count for n in a_issued)
        print(
            f"ratio certbot / certmgr: {ratio:.1f}x (target >= {TARGET_RATIO:g}x with "
            f"{count}/{count} issued): {'met' if met else 'MISSED'}"
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
