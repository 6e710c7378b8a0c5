"""Logs: one line per significant event (upload, bind, ACME order, renewal) with its ids as
fields; JSON when LOG_FORMAT=json, in the web process and in the Celery worker alike; and no
key material, Fernet key or token, or passphrase in any line of any logger at any level,
tracebacks of failed uploads included.

The in-process tests log through the formatter settings.LOGGING declares for LOG_FORMAT=json,
on a handler on the root logger at DEBUG (every logger of the project, Django's included,
propagates there); the subprocess tests set LOG_FORMAT=json in a real environment.
"""

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils.module_loading import import_string

from acme_client import services as acme_services
from acme_client.models import AcmeAccount, AcmeOrder
from certificates.models import Certificate
from certmgr import demo_pki
from core import encryption
from monitoring.delivery import expiry_check
from monitoring.models import Notification
from saleschannels.findings import Check, Finding, Reason
from saleschannels.models import SalesChannel
from tests.celery_worker import REPO_ROOT, broker, celery_worker_run, database_url
from tests.challtestsrv import challtestsrv_run
from tests.leaks import Secrets
from tests.redis import redis_run
from tests.support import port_free, upload

pytestmark = pytest.mark.django_db(transaction=True)

PASSPHRASE = "log-test passphrase 91c2"
HOSTNAME = "shop.example.test"


class JsonLog:
    """What the root logger received, formatted as LOG_FORMAT=json formats it."""

    def __init__(self, stream: io.StringIO):
        self.stream = stream

    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict]:
        """Every line, parsed: a line that is not one JSON object fails the test."""
        entries = []
        for line in self.text().splitlines():
            entry = json.loads(line)
            assert isinstance(entry, dict), line
            entries.append(entry)
        return entries

    def events(self, name: str) -> list[dict]:
        return [entry for entry in self.entries() if entry.get("event") == name]


@pytest.fixture
def json_log():
    spec = dict(django_settings.LOGGING["formatters"]["json"])
    formatter = import_string(spec.pop("()"))(**spec)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield JsonLog(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _secrets_of_the_database(secrets: Secrets) -> Secrets:
    """Every stored key (decrypted) and every Fernet token, and the configured Fernet keys."""
    for number, key in enumerate(django_settings.CERTMGR_ENCRYPTION_KEYS):
        secrets.fernet_key(f"CERTMGR_ENCRYPTION_KEYS[{number}]", key)
    for certificate in Certificate.objects.exclude(private_key_encrypted=""):
        secrets.key(f"key of certificate {certificate.pk}", certificate.private_key_pem())
        secrets.text(f"token of certificate {certificate.pk}", certificate.private_key_encrypted)
    for account in AcmeAccount.objects.all():
        secrets.key(f"ACME account key {account.pk}", encryption.decrypt(account.key_encrypted))
        secrets.text(f"token of ACME account {account.pk}", account.key_encrypted)
    return secrets


def test_upload_and_bind_are_json_lines_with_ids_and_nothing_secret_is_logged(
    json_log, as_alice, acme, pki, settings
):
    secrets = Secrets()
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=[HOSTNAME])
    encrypted_key = demo_pki.key_pem(leaf.private_key, passphrase=PASSPHRASE.encode())
    secrets.key("the uploaded key", leaf.key_pem)
    secrets.key("the uploaded key file", encrypted_key)
    secrets.text("the passphrase", PASSPHRASE)
    url = reverse("certificate_upload_ssl")

    def post(key: bytes, passphrase: str):
        """One upload attempt, with fresh file objects (a posted file is read once)."""
        return as_alice.post(
            url,
            {
                "institution": acme.pk,
                "name": "Shop",
                "certificate": upload("domain.crt", leaf.certificate_pem),
                "chain": upload("intermediate.crt", pki["intermediate"].certificate_pem),
                "private_key": upload("domain.key", key),
                "passphrase": passphrase,
            },
        )

    # Failed uploads first: a wrong passphrase, a damaged key, and a server error while the
    # key is in hand (encryption misconfigured), whose traceback django.request logs.
    assert "passphrase" in post(encrypted_key, "nope").context["form"].errors
    damaged = encrypted_key[:200] + encrypted_key[260:]
    assert "private_key" in post(damaged, PASSPHRASE).context["form"].errors
    configured = settings.CERTMGR_ENCRYPTION_KEYS
    settings.CERTMGR_ENCRYPTION_KEYS = ["not a Fernet key"]
    as_alice.raise_request_exception = False
    failed = post(encrypted_key, PASSPHRASE)
    assert failed.status_code == 500
    settings.CERTMGR_ENCRYPTION_KEYS = configured
    assert not Certificate.objects.exists()

    assert post(encrypted_key, PASSPHRASE).status_code == 302
    certificate = Certificate.objects.get()

    created = as_alice.post(
        reverse("channel_new"), {"institution": acme.pk, "name": "Main shop", "hostname": HOSTNAME}
    )
    assert created.status_code == 302
    channel = SalesChannel.objects.get()
    bound = as_alice.post(
        reverse("channel_ssl", args=[channel.pk]),
        {"mode": "uploaded", "certificate": certificate.pk},
    )
    assert bound.status_code == 302

    [upload_event] = json_log.events("certificate_uploaded")
    assert upload_event["certificate_id"] == certificate.pk
    assert upload_event["institution_id"] == acme.pk
    assert upload_event["levelname"] == "INFO" and upload_event["name"] == "certificates.services"
    [created_event] = json_log.events("channel_created")
    assert created_event["channel_id"] == channel.pk
    [bind_event] = json_log.events("channel_ssl_mode_changed")
    assert (bind_event["channel_id"], bind_event["certificate_id"]) == (channel.pk, certificate.pk)
    assert (bind_event["institution_id"], bind_event["ssl_mode"]) == (acme.pk, "uploaded")
    # The server error really was logged, traceback and all, so it was checked below.
    [server_error] = [e for e in json_log.entries() if e["name"] == "django.request"]
    assert server_error["levelname"] == "ERROR"
    assert "Traceback" in server_error["exc_info"]

    _secrets_of_the_database(secrets)
    assert secrets.found_in(json_log.text()) == []


def test_a_digest_sent_is_a_json_line_with_its_ids_and_no_address(json_log, acme, make_certificate):
    acme.notification_emails = "secret-ops@acme.test"
    acme.save()
    certificate = make_certificate(acme, days_left=5)
    report = expiry_check()
    (event,) = json_log.events("digest_sent")
    assert event["institution_id"] == acme.pk and event["findings"] == 1
    assert event["notification_ids"] == list(
        Notification.objects.filter(certificate=certificate).values_list("pk", flat=True)
    )
    assert event["emailed"] is True and event["recipients"] == 1
    assert report.digests[0].emailed
    assert "secret-ops@acme.test" not in json_log.text()


def _issue(channel) -> Certificate:
    claim = acme_services.channel_issuance_claim(channel_id=channel.pk)
    certificate = acme_services.channel_certificate_issue(channel_id=channel.pk, claim=claim)
    assert certificate is not None, SalesChannel.objects.get(pk=channel.pk).renewal_last_error
    return certificate


def test_acme_orders_issuance_and_renewal_are_json_lines_with_ids(
    json_log, pebble, acme, make_verified_channel
):
    channel = make_verified_channel(acme, name="Main", hostname=HOSTNAME, ssl_mode="managed")

    first = _issue(channel)
    renewed = _issue(channel)

    orders = list(AcmeOrder.objects.order_by("pk").values_list("pk", flat=True))
    started = json_log.events("acme_order_started")
    assert [event["order_id"] for event in started] == orders
    assert all(event["channel_id"] == channel.pk for event in started)
    [issued] = json_log.events("acme_certificate_issued")
    assert (issued["order_id"], issued["certificate_id"]) == (orders[0], first.pk)
    assert (issued["channel_id"], issued["institution_id"]) == (channel.pk, acme.pk)
    [renewal] = json_log.events("acme_certificate_renewed")
    assert (renewal["order_id"], renewal["certificate_id"]) == (orders[1], renewed.pk)
    assert renewal["replaces_id"] == first.pk
    # Both stored certificates logged their upload, as managed ones.
    stored = json_log.events("certificate_uploaded")
    assert [(e["certificate_id"], e["source"]) for e in stored] == [
        (first.pk, "managed"),
        (renewed.pk, "managed"),
    ]
    assert _secrets_of_the_database(Secrets()).found_in(json_log.text()) == []


def _django_process_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "certmgr.settings",
        "CERTMGR_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }


def test_log_format_json_in_the_environment_makes_every_line_json(tmp_path):
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('certificates.services').info("
        "'certificate %s stored', 7, extra={'event': 'certificate_uploaded', "
        "'certificate_id': 7, 'institution_id': 3})"
    )

    def run(log_format: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO_ROOT,
            env=_django_process_env(tmp_path, LOG_FORMAT=log_format),
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = run("json")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    [event] = [entry for entry in entries if entry.get("event") == "certificate_uploaded"]
    assert event["message"] == "certificate 7 stored"
    assert (event["certificate_id"], event["institution_id"]) == (7, 3)
    assert event["levelname"] == "INFO" and event["asctime"]

    plain = run("plain")
    assert "INFO certificates.services certificate 7 stored" in plain.stderr

    wrong = run("xml")
    assert wrong.returncode != 0
    assert "LOG_FORMAT must be plain or json, not 'xml'" in wrong.stderr


def test_the_celery_worker_logs_json_lines_with_the_order_ids(
    tmp_path, acme, settings, live_server, make_verified_channel
):
    # An ACME directory nobody listens on: the order fails, as a logged failure, once the
    # worker's pre-flight passed (the name points at 127.0.0.1 in a real DNS server, and the
    # live app answers the HTTP-01 self-check).
    unreachable = f"https://127.0.0.1:{port_free()}/directory"
    settings.ACME_DIRECTORY_URL = unreachable
    channel = make_verified_channel(acme, name="Main", hostname=HOSTNAME, ssl_mode="managed")
    claim = acme_services.channel_issuance_claim(channel_id=channel.pk)
    with (
        challtestsrv_run(tmp_path / "dns") as dns,
        redis_run(workdir=tmp_path / "redis") as redis,
    ):
        dns.a_set(HOSTNAME, ["127.0.0.1"])
        env = {
            "LOG_FORMAT": "json",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": redis.url,
            "CERTMGR_VAR_DIR": str(tmp_path / "worker-var"),
            "SECRET_KEY": django_settings.SECRET_KEY,
            "CERTMGR_ENCRYPTION_KEYS": ",".join(django_settings.CERTMGR_ENCRYPTION_KEYS),
            "ACME_DIRECTORY_URL": unreachable,
            # Longer than the retries of a refused connection (some 11 s): the CA is said
            # unreachable, not late.
            "ACME_ORDER_TIMEOUT": "30",
            "CERTMGR_DNS_RESOLVERS": dns.dns_address,
            "CERTMGR_EDGE_ADDRESSES": "127.0.0.1",
            "ACME_HTTP01_PORT": live_server.url.rsplit(":", 1)[1],
        }
        with (
            broker(redis.url),
            celery_worker_run(env=env, workdir=tmp_path / "worker", concurrency=1) as worker,
        ):
            from acme_client.tasks import issue_certificate

            issue_certificate.delay(channel.pk, claim)
            deadline = time.monotonic() + 60
            while '"acme_issuance_failed"' not in worker.log() and time.monotonic() < deadline:
                time.sleep(0.1)
            log = worker.log()

    # The banner is printed, not logged; every logged line (those with a level) is JSON.
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(entry["message"].endswith(f"{worker.hostname} ready.") for entry in entries)
    order = AcmeOrder.objects.get()
    by_event = {entry.get("event"): entry for entry in entries}
    assert by_event["acme_order_started"]["order_id"] == order.pk
    failed = by_event["acme_issuance_failed"]
    assert (failed["order_id"], failed["channel_id"], failed["institution_id"]) == (
        order.pk,
        channel.pk,
        acme.pk,
    )
    # The raw detail for the log and staff, the typed reason, and the order's plain words.
    channel.refresh_from_db()
    assert failed["error"] == channel.renewal_last_error
    assert failed["reason"] == channel.status_reason == Reason.ACME_UNREACHABLE
    assert order.error == Finding(Check.ACME, Reason.ACME_UNREACHABLE, channel.status_params).words
    assert failed["failures"] == 1
    assert not [line for line in log.splitlines() if " INFO/" in line or " ERROR/" in line]
    assert _secrets_of_the_database(Secrets()).found_in(log) == []
    # Task results are logged by Celery's task logger: JSON as well.
    assert any(entry["name"].startswith("celery.app.trace") for entry in entries), log[-3000:]
