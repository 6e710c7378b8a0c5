"""Scale-out: every moving part twice, on one broker and one database, against a real CA.

Two web processes behind an nginx load balancer (round-robin), two Celery workers each with
its own beat scheduler (renew_due and check_expiry every second, so both schedulers keep
queueing them while orders are in flight), one Redis, one PostgreSQL database of the test's
own (tests/postgres.py, never pytest-django's test database: every process reaches it through
DATABASE_URL, the test through psycopg), and Pebble validating HTTP-01 through the load
balancer. A manager logs in and, page by page and alternating between the web processes,
creates 20 sales channels and switches each to *Managed by the platform* (each hostname
marked verified in the database in between, as staff approval records it: README, "Onboarding
a hostname"); she also uploads a certificate that expires in 5 days. The workers run the real
pre-flight before every order: DNS and CAA asked of Pebble's DNS server, the HTTP-01
self-check fetched through the load balancer, like Pebble's validations.

The test proves that
- each channel ends with exactly one ACME order and one managed certificate (counted in the
  database and in Pebble's log), active; no claim is left behind and no failure recorded;
- then, when every channel falls due at once (its renewal date set to now in the database,
  as time would), the two schedulers racing to claim them renew each exactly once: two
  orders and two certificates per channel, the second replacing the first;
- every HTTP-01 request of Pebble was answered, by both web processes (their request logs),
  some challenges by both; the only other challenge requests are the workers' pre-flight
  self-checks, one per order;
- both beats queued renew_due repeatedly while the orders ran;
- the active certificates are in the edge folder and nginx serves them;
- the expiring certificate is reported once, and no finding is e-mailed twice although both
  schedulers run check_expiry every second.

Slow (20 to 60 s): marked `slow`, and still part of `make test`.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest
import requests
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization

from certmgr import demo_pki
from saleschannels.probe import certificate_fingerprint
from tests.celery_worker import REPO_ROOT, celery_worker_run
from tests.nginx import nginx_run, served_certificate
from tests.pebble import pebble_run
from tests.postgres import postgres_bindir, postgres_database
from tests.redis import redis_run
from tests.support import PASSWORD, require_program
from tests.web import web_run

pytestmark = pytest.mark.slow

CHANNELS = 20
PROCESSES = 2  # of each kind: web, worker (with beat)
INSTITUTION = "Acme Tickets"
EXPIRING_NAME = "box office (expires in 5 days)"
# Generous: a loaded machine with two cores shared by many test runs.
ISSUANCE_TIMEOUT = 240.0
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"

# Run in `manage.py shell` against the test's database: the manager and her institution.
SEED = f"""
import json
from django.contrib.auth import get_user_model
from institutions.models import Institution, Membership
institution = Institution.objects.create(name={INSTITUTION!r}, slug="acme-tickets")
alice = get_user_model().objects.create_user(
    username="alice", password={PASSWORD!r}, email="alice@acme.test"
)
Membership.objects.create(user=alice, institution=institution, role=Membership.Role.MANAGER)
print(json.dumps(institution.pk))
"""


def manage(*args: str, env: dict[str, str]) -> str:
    """Run manage.py in a subprocess with `env` (the test's database); its stdout."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args[:1])} failed:\n{result.stderr}"
    return result.stdout


class BackOffice:
    """A manager's browser session, sent to one web process or the other per request; the
    session lives in the shared database, so any process recognises it."""

    def __init__(self):
        self.session = requests.Session()
        self.csrf_token = ""

    def _form_token(self, response: requests.Response) -> None:
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
        assert match, f"no form on {response.url} ({response.status_code})"
        self.csrf_token = match[1]

    def get(self, web, path: str) -> requests.Response:
        response = self.session.get(web.url + path, timeout=30)
        assert response.status_code == 200, (path, response.status_code)
        return response

    def post(self, web, path: str, data: dict, files: dict | None = None) -> requests.Response:
        """A form submission; the answer must be the redirect of a success."""
        response = self.session.post(
            web.url + path,
            data={"csrfmiddlewaretoken": self.csrf_token, **data},
            files=files,
            allow_redirects=False,
            timeout=60,
        )
        assert response.status_code == 302, (path, response.status_code, response.text[-2000:])
        return response

    def login(self, web) -> None:
        self._form_token(self.get(web, "/accounts/login/"))
        response = self.post(web, "/accounts/login/", {"username": "alice", "password": PASSWORD})
        assert response.headers["Location"] == "/"
        # Logging in rotates the CSRF token: take the new one from a form.
        self._form_token(self.get(web, "/saleschannels/new/"))

    def channel_create(self, web, *, institution_id: int, hostname: str) -> int:
        response = self.post(
            web,
            "/saleschannels/new/",
            {"institution": institution_id, "name": f"shop {hostname}", "hostname": hostname},
        )
        match = re.fullmatch(r"/saleschannels/(\d+)/", response.headers["Location"])
        assert match, response.headers["Location"]
        return int(match[1])

    def channel_managed(self, web, channel_id: int) -> None:
        self.post(web, f"/saleschannels/{channel_id}/ssl/", {"mode": "managed"})

    def certificate_upload(self, web, *, institution_id: int, name: str, issued, chain) -> None:
        self.post(
            web,
            "/certificates/new/ssl/",
            {"institution": institution_id, "name": name, "passphrase": ""},
            files={
                "certificate": ("shop.crt", issued.certificate_pem),
                "private_key": ("shop.key", issued.key_pem),
                "chain": ("chain.pem", chain),
            },
        )


def wait_for(condition, *, timeout: float, what) -> None:
    """Poll `condition` until true; `what()` explains the failure (it reads the logs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what()}")


def rows(db: psycopg.Connection, query: str, *params) -> list[tuple]:
    return db.execute(query, params).fetchall()


def digests_sent(mail_dir: Path) -> list[email.message.EmailMessage]:
    """Every e-mail the workers wrote (Django's file backend: messages separated by dashes)."""
    messages = []
    for path in sorted(mail_dir.glob("*.log")):
        for raw in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if raw.strip():
                messages.append(email.message_from_bytes(raw, policy=email.policy.default))
    return messages


class Channel(NamedTuple):
    hostname: str
    ssl_mode: str
    renewal_failures: int
    renewal_claim: str
    active_certificate_id: int | None
    source: str | None
    replaces_id: int | None
    certificate_pem: str
    chain_pem: str
    fingerprint: str


def channel_states(db: psycopg.Connection) -> dict[int, Channel]:
    """Every channel with its active certificate, by id."""
    return {
        row[0]: Channel(*row[1:])
        for row in rows(
            db,
            "SELECT s.id, s.hostname, s.ssl_mode, s.renewal_failures, s.renewal_claim, "
            "s.active_certificate_id, c.source, c.replaces_id, c.certificate_pem, c.chain_pem, "
            "c.fingerprint_sha256 FROM saleschannels_saleschannel s "
            "LEFT JOIN certificates_certificate c ON c.id = s.active_certificate_id",
        )
    }


def issued_channels(db: psycopg.Connection, generation: int) -> int:
    """Channels whose active certificate is their `generation`-th managed one, claim released
    (1: the first issuance, 2: its renewal, which replaces it)."""
    renewed = "IS NOT NULL" if generation > 1 else "IS NULL"
    return rows(
        db,
        "SELECT COUNT(*) FROM saleschannels_saleschannel s "
        "JOIN certificates_certificate c ON c.id = s.active_certificate_id "
        f"WHERE c.source = 'managed' AND s.renewal_claim = '' AND c.replaces_id {renewed}",
    )[0][0]


def assert_generation(db: psycopg.Connection, channel_ids: list[int], *, generation: int):
    """Each channel has exactly `generation` orders, all valid, each with its own managed
    certificate, the newest active and replacing the one before; nothing else was issued."""
    orders = rows(
        db,
        "SELECT channel_id, status, certificate_id FROM acme_client_acmeorder ORDER BY id",
    )
    per_channel = Counter(channel for channel, _, _ in orders)
    assert per_channel == dict.fromkeys(channel_ids, generation)
    assert {status for _, status, _ in orders} == {"valid"}
    ordered = [certificate for _, _, certificate in orders]
    assert len(set(ordered)) == len(ordered)
    managed = rows(
        db, "SELECT id, replaces_id FROM certificates_certificate WHERE source = 'managed'"
    )
    assert sorted(ordered) == sorted(certificate for certificate, _ in managed)
    channels = channel_states(db)
    assert sorted(channels) == sorted(channel_ids)
    for channel in channels.values():
        assert channel.ssl_mode == channel.source == "managed", channel
        assert (channel.renewal_failures, channel.renewal_claim) == (0, ""), channel
        if generation > 1:
            assert channel.replaces_id in ordered, channel


def hostname_verify(db: psycopg.Connection, channel_id: int) -> None:
    """Mark the channel's hostname verified, as staff approval does: only such a channel is
    ordered for (README, "Onboarding a hostname")."""
    db.execute(
        "UPDATE saleschannels_saleschannel SET hostname_verified_at = now(), "
        "hostname_verified_by = 'staff' WHERE id = %s",
        (channel_id,),
    )


def expiring_emailed(db: psycopg.Connection) -> bool:
    return bool(
        rows(
            db,
            "SELECT 1 FROM monitoring_notification n "
            "JOIN certificates_certificate c ON c.id = n.certificate_id "
            "WHERE c.name = %s AND n.emailed_at IS NOT NULL",
            EXPIRING_NAME,
        )
    )


def test_two_of_everything_issue_one_certificate_per_channel_and_answer_every_challenge(
    tmp_path, pki
):
    started = time.monotonic()
    phases: dict[str, float] = {}
    # Every program first, so that a missing one skips (or fails in CI) before anything runs.
    for program in ("redis-server", "nginx", "pebble", "pebble-challtestsrv"):
        require_program(program)
    postgres_bindir()

    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    edge_dir = tmp_path / "edge"
    hostnames = [f"shop{index:02d}.acme.test" for index in range(CHANNELS)]

    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database(name_prefix="certmgr_scaleout"))
        redis = stack.enter_context(redis_run(workdir=tmp_path / "redis"))
        env = {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis.url,
            # Shared by every process: sessions, CSRF tokens and stored keys work on all.
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CERTMGR_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "CERTMGR_VAR_DIR": str(tmp_path / "var"),
            "CERTMGR_EDGE_DIR": str(edge_dir),
            "CERTMGR_BACKOFFICE_HOSTS": "127.0.0.1",
            "EMAIL_URL": f"filemail:///{mail_dir}",
        }
        manage("migrate", "--noinput", env=env)
        institution_id = int(manage("shell", "-c", SEED, env=env).strip().splitlines()[-1])
        phases["database"] = time.monotonic() - started

        webs = [
            stack.enter_context(web_run(env=env, workdir=tmp_path / "web", name=f"web-{index}"))
            for index in range(PROCESSES)
        ]
        balancer = stack.enter_context(
            nginx_run(
                edge_dir=edge_dir,
                workdir=tmp_path / "nginx",
                acme_upstream=[web.address for web in webs],
            )
        )
        pebble = stack.enter_context(
            pebble_run(workdir=tmp_path / "pebble", http_port=balancer.http_port)
        )
        worker_env = {
            **env,
            "ACME_DIRECTORY_URL": pebble.directory_url,
            "ACME_CA_BUNDLE": str(pebble.ca_bundle),
            "ACME_ORDER_TIMEOUT": "90",
            "CERTMGR_PROBE_ADDRESS": balancer.address,
            "CERTMGR_RENEW_INTERVAL": "1",
            "CERTMGR_CHECK_EXPIRY_INTERVAL": "1",
            # The pre-flight sees what Pebble sees: its DNS server (every name 127.0.0.1), the
            # edge at 127.0.0.1, and HTTP-01 on the balancer's port that Pebble validates on.
            "CERTMGR_DNS_RESOLVERS": pebble.dns.dns_address,
            "CERTMGR_EDGE_ADDRESSES": "127.0.0.1",
            "ACME_HTTP01_PORT": str(balancer.http_port),
        }
        # Stopped before the final counts (a warm shutdown finishes the tasks in flight),
        # so that nothing is half sent while the e-mails are counted.
        workers_stack = stack.enter_context(ExitStack())
        workers = [
            workers_stack.enter_context(
                celery_worker_run(env=worker_env, workdir=tmp_path / f"worker-{index}", beat=True)
            )
            for index in range(PROCESSES)
        ]
        phases["processes"] = time.monotonic() - started

        def logs() -> str:
            parts = [f"--- {worker.hostname}\n{worker.log_tail()}" for worker in workers]
            parts += [f"--- {web.name}\n{web.log_tail()}" for web in webs]
            return "\n".join([*parts, "--- pebble", pebble.log_tail()])

        # What a manager does, spread over both web processes.
        office = BackOffice()
        office.login(webs[0])
        soon = demo_pki.utc_now() + timedelta(days=5)
        office.certificate_upload(
            webs[1],
            institution_id=institution_id,
            name=EXPIRING_NAME,
            issued=demo_pki.leaf_create(
                issuer=pki["intermediate"],
                hostnames=["boxoffice.acme.test"],
                not_before=soon - timedelta(days=90),
                not_after=soon,
            ),
            chain=pki["intermediate"].certificate_pem,
        )
        db = stack.enter_context(psycopg.connect(database_url, autocommit=True))
        channel_ids = []
        for index, hostname in enumerate(hostnames):
            channel_id = office.channel_create(
                webs[index % PROCESSES], institution_id=institution_id, hostname=hostname
            )
            hostname_verify(db, channel_id)
            office.channel_managed(webs[(index + 1) % PROCESSES], channel_id)
            channel_ids.append(channel_id)
        phases["requests"] = time.monotonic() - started

        wait_for(
            lambda: issued_channels(db, generation=1) == CHANNELS,
            timeout=ISSUANCE_TIMEOUT,
            what=lambda: f"{CHANNELS} issued channels, {issued_channels(db, 1)} so far\n{logs()}",
        )
        phases["issued"] = time.monotonic() - started
        # One order and one certificate per channel, in certmgr and at the CA.
        assert_generation(db, channel_ids, generation=1)
        assert (pebble.orders_count(), pebble.issued_count()) == (CHANNELS, CHANNELS)

        # Renewal: the due date of every channel arrives at once (as the time at 2/3 of the
        # lifetime would), and both schedulers, looking every second, race to claim them.
        db.execute("UPDATE saleschannels_saleschannel SET renewal_due_at = now()")
        wait_for(
            lambda: issued_channels(db, generation=2) == CHANNELS,
            timeout=ISSUANCE_TIMEOUT,
            what=lambda: f"{CHANNELS} renewals, {issued_channels(db, 2)} so far\n{logs()}",
        )
        phases["renewed"] = time.monotonic() - started
        wait_for(
            lambda: expiring_emailed(db), timeout=60, what=lambda: f"the expiry digest\n{logs()}"
        )
        # Both schedulers keep going a moment, then stop (a warm shutdown finishes what runs).
        time.sleep(2)
        workers_stack.close()
        phases["workers stopped"] = time.monotonic() - started
        worker_logs = [worker.log() for worker in workers]

        assert_generation(db, channel_ids, generation=2)
        assert (pebble.orders_count(), pebble.issued_count()) == (2 * CHANNELS, 2 * CHANNELS)
        # The renewals were claimed by the schedulers' renew_due runs (the first issuances
        # mostly by the web processes), each renew_due run of both beats every second.
        claimed_by_beats = sum(
            int(claimed)
            for log in worker_logs
            for claimed in re.findall(r"renew_due\[\S+\] succeeded in \S+: (\d+)", log)
        )
        assert claimed_by_beats >= CHANNELS
        for log in worker_logs:
            assert log.count("Sending due task renew-due") >= 3
            assert log.count("Sending due task check-expiry") >= 3

        # Every request of Pebble's VA went through the balancer to a web process and was
        # answered; both processes answered, and a challenge was answered by both (Pebble
        # fetches each from several perspectives, which round-robin spreads).
        fetched = [web.requests_logged(CHALLENGE_PREFIX) for web in webs]
        assert all(status == 200 for served in fetched for _, status in served), fetched
        by_pebble = Counter(pebble.http01_fetches())
        answered = Counter(path for served in fetched for path, _ in served)
        assert Counter({path: answered[path] for path in by_pebble}) == by_pebble
        # Every other challenge request is a worker's pre-flight self-check, with a token of
        # its own: exactly one before each of the 2 x CHANNELS orders.
        self_checks = [count for path, count in answered.items() if path not in by_pebble]
        assert self_checks == [1] * (2 * CHANNELS), self_checks
        tokens_by_web = [{path for path, _ in served if path in by_pebble} for served in fetched]
        # At least one challenge per channel (Pebble may reuse an authorization on renewal).
        assert len(set.union(*tokens_by_web)) >= CHANNELS
        assert all(tokens_by_web), [web.name for web in webs]
        assert set.intersection(*tokens_by_web)

        # The renewed certificates are in the edge folder, and nginx serves them from there.
        for channel in channel_states(db).values():
            crt = (edge_dir / f"{channel.hostname}.crt").read_text()
            assert crt == channel.certificate_pem + channel.chain_pem, channel.hostname
            key = serialization.load_pem_private_key(
                (edge_dir / f"{channel.hostname}.key").read_bytes(), password=None
            )
            leaf = x509.load_pem_x509_certificate(channel.certificate_pem.encode())
            assert key.public_key() == leaf.public_key(), channel.hostname
            served = served_certificate(balancer.address, channel.hostname)
            assert certificate_fingerprint(served) == channel.fingerprint, channel.hostname

        # Findings: the expiring certificate once, and no finding in two e-mails.
        assert rows(
            db,
            "SELECT n.threshold FROM monitoring_notification n "
            "JOIN certificates_certificate c ON c.id = n.certificate_id WHERE c.name = %s",
            EXPIRING_NAME,
        ) == [("7d",)]
        emailed = rows(
            db, "SELECT COUNT(*) FROM monitoring_notification WHERE emailed_at IS NOT NULL"
        )
        digests = [
            message
            for message in digests_sent(mail_dir)
            if message["Subject"].startswith(f"[certmgr] {INSTITUTION}:")
        ]
        findings_in_digests = sum(
            int(re.search(r": (\d+) certificate findings?$", message["Subject"])[1])
            for message in digests
        )
        assert findings_in_digests == emailed[0][0]
        mentioning = [
            message
            for message in digests
            if EXPIRING_NAME in message.get_body(("plain",)).get_content()
        ]
        assert len(mentioning) == 1
        assert mentioning[0]["To"] == "alice@acme.test"

    phases["total"] = time.monotonic() - started
    challenges = ", ".join(f"{web.name} {len(served)}" for web, served in zip(webs, fetched))
    print(
        "scale-out timings (s from start): "
        + ", ".join(f"{phase} {seconds:.1f}" for phase, seconds in phases.items())
        + f"; challenge fetches answered: {challenges}; renewals claimed by beats: "
        + f"{claimed_by_beats}; digests: {len(digests)} with {findings_in_digests} findings"
    )
