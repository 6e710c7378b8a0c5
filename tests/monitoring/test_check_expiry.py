"""check_expiry: findings recorded once per threshold, one digest per institution and run.

Time travels with time-machine; e-mail goes to Django's locmem outbox, except in the one test
that sends through a real SMTP server (aiosmtpd on loopback). Webhooks are posted to a real
HTTP server in a thread.
"""

import base64
import email
import email.policy
import json
import socket
import ssl
import threading
from datetime import timedelta
from html import escape
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import StringIO
from smtplib import SMTPException

import certifi
import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from certificates import services
from certificates.bundle import BundleResult
from certificates.models import Certificate
from certmgr import demo_pki
from monitoring import delivery, digests, findings, staff_summary, webhooks
from monitoring.delivery import expiry_check
from monitoring.models import Notification
from saleschannels.models import ProbeFailure, ProbeStatus, SalesChannel
from tests.monitoring.webhook_server import WebhookServer

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _addresses(settings, acme, opera):
    settings.CERTMGR_BASE_URL = "https://certmgr.example.test"
    acme.notification_emails = "ops@acme.test, oncall@acme.test"
    acme.save()
    opera.notification_emails = "it@opera.test"
    opera.save()


@pytest.fixture
def upload(make_certificate):
    """Store a certificate through the upload service, managed or renewing another."""
    return make_certificate


def sent_thresholds(message=None) -> list[str]:
    """Thresholds of the certificate findings e-mailed, oldest first."""
    rows = Notification.objects.filter(kind="certificate_expiry", emailed_at__isnull=False)
    return list(rows.order_by("pk").values_list("threshold", flat=True))


# --- thresholds over time -------------------------------------------------------------------


def test_a_certificate_walks_through_every_threshold_once(acme, upload):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        certificate = upload(acme, name="Box office", days_left=45, lifetime=365)
        expiry_check()
        assert mail.outbox == []  # 45 days left: nothing yet

        for days, words in [
            # Days left rounded up (certificates/expiry.py): the 7-day warning says 7.
            (30, "30 days left"),
            (14, "14 days left"),
            (7, "7 days left"),
            (3, "3 days left"),
            (1, "1 day left"),
            (0, "expired less than a day ago"),
        ]:
            traveller.move_to(certificate.expires_at - days * DAY + MINUTE)
            before = len(mail.outbox)
            report = expiry_check()
            assert report.recorded == 1
            assert len(mail.outbox) == before + 1, days
            body = mail.outbox[-1].body
            assert body.count("Box office") == 1, body  # exactly the new finding
            assert words in body
            # A rerun, an hour later, sends nothing.
            traveller.shift(timedelta(hours=1))
            assert expiry_check().recorded == 0
            assert len(mail.outbox) == before + 1

        traveller.shift(30 * DAY)
        expiry_check()
    assert sent_thresholds() == ["30d", "14d", "7d", "3d", "1d", "0d"]
    assert len(mail.outbox) == 6


def test_a_certificate_uploaded_with_5_days_left_gets_only_the_7_day_warning(acme, upload):
    certificate = upload(acme, days_left=5)
    due, *ahead = certificate.expiry_thresholds.order_by("crossed_at")
    # 30d, 14d and 7d are crossed already: the newest of them is due at once, the rest ahead.
    assert due.name == "7d" and due.crossed_at <= timezone.now()
    assert [
        (threshold.name, certificate.expires_at - threshold.crossed_at) for threshold in ahead
    ] == [
        ("3d", 3 * DAY),
        ("1d", 1 * DAY),
        ("0d", 0 * DAY),
    ]
    expiry_check()
    expiry_check()
    assert sent_thresholds() == ["7d"]
    assert len(mail.outbox) == 1


def test_a_missed_run_sends_only_the_newest_threshold(acme, upload):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        certificate = upload(acme, days_left=20, lifetime=365)
        expiry_check()
        assert sent_thresholds() == ["30d"]
        # The scheduler was down from 20 to 2 days before expiry.
        traveller.move_to(certificate.expires_at - 2 * DAY)
        expiry_check()
    assert sent_thresholds() == ["30d", "3d"]


def test_a_renewed_certificate_stops_the_mails_about_the_old_one(acme, upload):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        old = upload(acme, name="Old", days_left=10)
        expiry_check()
        assert sent_thresholds() == ["14d"]
        upload(acme, name="Renewed", days_left=90, replaces=old)
        for days in (6, 2, 0.5, -1):
            traveller.move_to(old.expires_at - days * DAY)
            assert expiry_check().recorded == 0
    assert len(mail.outbox) == 1
    assert not old.expiry_thresholds.exists()


def test_a_certificate_renewed_before_its_digest_went_out_is_left_out(acme, upload):
    old = upload(acme, name="Old", days_left=10)
    findings.findings_collect(now=timezone.now())
    upload(acme, name="Renewed", days_left=90, replaces=old)
    expiry_check()
    assert mail.outbox == []


def test_short_lived_certificates_are_warned_at_half_and_a_quarter_of_their_life(acme, upload):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        six_days = upload(acme, name="Six days", days_left=6, lifetime=6)
        forty_five = upload(acme, name="Forty-five days", days_left=45, lifetime=45)
        steps = [
            (six_days, 3, "half"),
            (six_days, 1.5, "quarter"),
            (six_days, 0, "0d"),
            (forty_five, 22.5, "half"),
            (forty_five, 11.25, "quarter"),
        ]
        for certificate, days, threshold in steps:
            traveller.move_to(certificate.expires_at - days * DAY - MINUTE)
            assert expiry_check().recorded == 0, threshold
            traveller.move_to(certificate.expires_at - days * DAY + MINUTE)
            assert expiry_check().recorded == 1, threshold
            assert Notification.objects.filter(
                certificate=certificate, threshold=threshold
            ).exists()


def test_a_managed_certificate_is_only_warned_about_once_its_renewal_is_late(acme, upload):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        managed = upload(acme, days_left=31, lifetime=90, source=Certificate.Source.MANAGED)
        # Renewal is planned at 2/3 of the life (30 days left): the 30-day warning would only
        # say that, so it is not sent.
        traveller.move_to(managed.expires_at - 29 * DAY)
        assert expiry_check().recorded == 0
        traveller.move_to(managed.expires_at - 14 * DAY + MINUTE)
        assert expiry_check().recorded == 1
    assert sent_thresholds() == ["14d"]
    assert "Renew now" in mail.outbox[0].body


def test_unverified_certificates_are_warned_about_too(acme):
    services.certificate_upload(
        institution=acme,
        name="Typed by hand",
        kind=Certificate.Kind.APPLE_IDENTITY_PROOF,
        bundle=BundleResult(),
        actor=None,
        expires_at=timezone.now() + 2 * DAY,
        content=b"apple-developer-merchantid-domain-association",
    )
    expiry_check()
    assert sent_thresholds() == ["3d"]
    assert "Apple Developer account" in mail.outbox[0].body


def test_long_expired_certificates_are_history_not_news(acme, upload):
    upload(acme, days_left=-10)
    assert expiry_check().recorded == 0
    with time_machine.travel(timezone.now() + DAY):
        assert expiry_check().recorded == 0


def test_changed_thresholds_apply_to_stored_certificates_after_a_rebuild(acme, upload, settings):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        certificate = upload(acme, days_left=50, lifetime=365)
        settings.CERTMGR_NOTIFY_DAYS = [60, 45, 0]
        out = StringIO()
        call_command("check_expiry", "--rebuild-thresholds", stdout=out)
        assert "2 threshold(s) ahead stored" in out.getvalue()  # 45d and 0d; 60d is past
        assert mail.outbox == []
        traveller.move_to(certificate.expires_at - 45 * DAY + MINUTE)
        expiry_check()
        traveller.move_to(certificate.expires_at - 30 * DAY + MINUTE)
        expiry_check()  # the old 30d threshold is gone
    assert sent_thresholds() == ["45d"]


def test_the_thresholds_follow_the_settings(acme, upload, settings):
    settings.CERTMGR_NOTIFY_DAYS = [60, 0]
    upload(acme, days_left=50, lifetime=365)
    expiry_check()
    assert sent_thresholds() == ["60d"]


# --- the digest -----------------------------------------------------------------------------


def test_each_institution_gets_one_digest_with_its_own_findings(acme, opera, upload):
    first = upload(acme, name="Acme shop", hostnames=["shop.acme.test"], days_left=5)
    upload(acme, name="Acme festival", hostnames=["festival.acme.test"], days_left=-1)
    upload(opera, name="Opera box office", hostnames=["tickets.opera.test"], days_left=12)
    upload(opera, name="Opera far away", days_left=200, lifetime=365)
    report = expiry_check()
    assert report.recorded == 3
    assert len(mail.outbox) == 2
    acme_mail, opera_mail = sorted(mail.outbox, key=lambda message: message.subject)
    assert acme_mail.to == ["ops@acme.test", "oncall@acme.test"]
    assert acme_mail.subject == "[certmgr] Acme Tickets: 2 certificate findings"
    assert opera_mail.to == ["it@opera.test"]
    assert "Opera" not in acme_mail.body and "Acme" not in opera_mail.body.replace("acme", "")
    body = acme_mail.body
    for text in (
        "Certificate expires in 5 days: Acme shop",
        "Hostnames: shop.acme.test",
        first.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        "5 days left",  # made to expire in 5 days: 5 (certificates/expiry.py)
        "upload it in certmgr",
        f"https://certmgr.example.test/certificates/{first.pk}/",
        "Certificate expired: Acme festival",
        "Visitors see security errors now. Get a renewed",
        "https://certmgr.example.test/institutions/acme-tickets/notifications/",
    ):
        assert text in body, text
    # The most urgent first: the expired one.
    assert body.index("Acme festival") < body.index("Acme shop")
    html, mimetype = acme_mail.alternatives[0]
    assert mimetype == "text/html"
    assert f'<a href="https://certmgr.example.test/certificates/{first.pk}/">Acme shop</a>' in html
    assert "&" not in body.replace("&amp;", "")  # plain text is not HTML-escaped


def test_the_html_digest_escapes_what_operators_typed(acme, upload):
    upload(acme, name='Shop <script>alert("x")</script> & co', days_left=5)
    expiry_check()
    (message,) = mail.outbox
    html = message.alternatives[0][0]
    assert "<script>" not in html
    assert "Shop &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</a>" in html
    assert 'Shop <script>alert("x")</script> & co' in message.body  # text is not HTML


def test_without_addresses_the_managers_get_the_digest(acme, alice, bob, upload):
    acme.notification_emails = ""
    acme.save()
    alice.email = "alice@acme.test"
    alice.save()
    bob.email = "bob@acme.test"  # a viewer
    bob.save()
    upload(acme, days_left=5)
    expiry_check()
    assert [message.to for message in mail.outbox] == [["alice@acme.test"]]


def test_an_institution_nobody_can_be_told_about_is_not_retried(acme, upload):
    acme.notification_emails = ""
    acme.save()
    upload(acme, days_left=5)
    report = expiry_check()
    assert not report.digests[0].emailed
    assert mail.outbox == []
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()
    assert expiry_check().digests == []


def test_a_failed_email_is_sent_by_the_next_run_and_never_twice(acme, opera, upload, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    upload(acme, name="Acme shop", days_left=5)
    upload(opera, name="Opera shop", days_left=5)
    real_send = EmailBackend.send_messages

    def send_failing_for_acme(self, messages):
        if any("ops@acme.test" in message.to for message in messages):
            raise SMTPException("451 try again later")
        return real_send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_failing_for_acme)
    report = expiry_check()
    assert [d.emailed for d in report.digests] == [False, True]
    assert "451" in report.digests[0].email_error
    assert [message.to for message in mail.outbox] == [["it@opera.test"]]

    monkeypatch.setattr(EmailBackend, "send_messages", real_send)
    report = expiry_check()
    assert report.recorded == 0
    assert [d.institution.slug for d in report.digests] == ["acme-tickets"]
    assert "Acme shop" in mail.outbox[-1].body
    assert expiry_check().digests == []
    assert len(mail.outbox) == 2


def test_two_runs_at_once_send_each_finding_once(acme, upload):
    upload(acme, days_left=5)
    now = timezone.now()
    # Both runs record before either delivers (the worst interleaving).
    findings.findings_collect(now=now)
    findings.findings_collect(now=now)
    delivery.findings_deliver(now=now)
    delivery.findings_deliver(now=now)
    assert Notification.objects.count() == 1
    assert len(mail.outbox) == 1


# --- sales channel findings -----------------------------------------------------------------


@pytest.fixture
def channel(acme, upload):
    certificate = upload(acme, name="Shop cert", hostnames=["shop.acme.test"], days_left=80)
    return SalesChannel.objects.create(
        institution=acme,
        name="Main shop",
        hostname="shop.acme.test",
        ssl_mode=SalesChannel.SslMode.MANAGED,
        active_certificate=certificate,
    )


# A renewal failing as acme_client records it: the typed reason on the status, and the CA's
# raw text in renewal_last_error, which is for the log and the admin only.
RAW_ERROR = "urn:ietf:params:acme:error:connection: 203.0.113.9: Connection refused (raw)"
CONNECTION_FAILING = {
    "status": "renewal_failing",
    "status_reason": "acme_connection",
    "status_params": {"ca": "Pebble (test CA)"},
}
CONNECTION_WORDS = "The CA (Pebble (test CA)) could not connect to the hostname to validate it."
CONNECTION_ADVICE = "Check that port 80 of the hostname reaches the platform's edge."


def channel_thresholds() -> list[str]:
    rows = Notification.objects.filter(channel__isnull=False).order_by("pk")
    return list(rows.values_list("threshold", flat=True))


def test_a_failing_renewal_is_reported_once_per_streak(acme, channel, upload):
    SalesChannel.objects.filter(pk=channel.pk).update(renewal_failures=1)
    expiry_check()
    assert channel_thresholds() == []  # one failure: the backoff retries it
    SalesChannel.objects.filter(pk=channel.pk).update(
        renewal_failures=2, renewal_last_error=RAW_ERROR, **CONNECTION_FAILING
    )
    expiry_check()
    SalesChannel.objects.filter(pk=channel.pk).update(renewal_failures=5)
    expiry_check()
    assert channel_thresholds() == ["renewal-failing"]
    body = mail.outbox[0].body
    assert "Certificate renewal failing: Main shop" in body
    assert "2 attempts in a row failed. Status: Renewal failing." in body
    assert CONNECTION_WORDS in body
    assert CONNECTION_ADVICE in body
    assert f"https://certmgr.example.test/saleschannels/{channel.pk}/" in body

    # Renewed (a new active certificate), and later failing again: a new streak.
    renewed = upload(acme, days_left=90, replaces=channel.active_certificate)
    SalesChannel.objects.filter(pk=channel.pk).update(
        active_certificate=renewed, renewal_failures=0
    )
    expiry_check()
    SalesChannel.objects.filter(pk=channel.pk).update(renewal_failures=2)
    expiry_check()
    assert channel_thresholds() == ["renewal-failing", "renewal-failing"]
    assert len(mail.outbox) == 2


def test_the_digest_says_the_status_and_never_the_raw_error(acme, channel):
    """E-mail (text and HTML), webhook JSON and the recorded finding: the status's label,
    words and advice; the CA's raw text stays in renewal_last_error (log, admin)."""
    SalesChannel.objects.filter(pk=channel.pk).update(
        renewal_failures=3, renewal_last_error=RAW_ERROR, **CONNECTION_FAILING
    )
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        report = expiry_check()
    assert report.digests[0].webhook == "delivered"
    [message] = mail.outbox
    [(html_body, _)] = message.alternatives
    [payload] = hook.bodies
    finding = Notification.objects.get(kind="renewal_failing")
    for said in (message.body, html_body, json.dumps(payload), json.dumps(finding.details)):
        assert "Connection refused" not in said
        assert "203.0.113.9" not in said
    assert "Status: Renewal failing." in message.body
    assert CONNECTION_WORDS in message.body
    assert escape(CONNECTION_WORDS) in html_body
    [posted] = payload["findings"]
    assert CONNECTION_WORDS in posted["action"]
    assert CONNECTION_ADVICE in posted["action"]
    assert finding.details["words"] == CONNECTION_WORDS
    assert finding.details["label"] == "Renewal failing"
    assert "error" not in finding.details


def test_a_renewal_finding_recorded_with_raw_error_text_does_not_send_it(acme, channel):
    """Findings recorded before the status existed kept the raw text under "error"."""
    Notification.objects.create(
        institution=acme,
        kind=Notification.Kind.RENEWAL_FAILING,
        channel=channel,
        threshold="renewal-failing",
        episode="certificate-old",
        details={"name": "Main shop", "hostname": "shop.acme.test", "error": RAW_ERROR},
    )
    expiry_check()
    [message] = mail.outbox
    assert "Certificate renewal failing: Main shop" in message.body
    assert RAW_ERROR not in message.body
    assert RAW_ERROR not in message.alternatives[0][0]


def test_a_first_issuance_failing_is_said_as_such(acme):
    SalesChannel.objects.create(
        institution=acme,
        name="New shop",
        hostname="new.acme.test",
        ssl_mode=SalesChannel.SslMode.MANAGED,
        renewal_failures=2,
        renewal_last_error=RAW_ERROR,
        status="issuance_failing",
        status_reason="caa_forbids",
        status_params={"name": "acme.test", "allowed": ["pki.goog"], "ca": "letsencrypt.org"},
    )
    expiry_check()
    [message] = mail.outbox
    assert "Certificate issuance failing: New shop" in message.body
    assert "could not issue the certificate of new.acme.test" in message.body
    assert "Status: Issuance failing." in message.body
    assert "allow only pki.goog, not letsencrypt.org." in message.body
    assert 'Add a CAA record at acme.test: 0 issue "letsencrypt.org".' in message.body
    assert RAW_ERROR not in message.body


def test_a_probe_problem_is_reported_once_per_served_certificate(channel):
    def probe(status, fingerprint="", expires_in=None):
        SalesChannel.objects.filter(pk=channel.pk).update(
            probe_status=status,
            probe_fingerprint=fingerprint,
            probe_expires_at=timezone.now() + expires_in if expires_in else None,
            probe_checked_at=timezone.now(),
        )
        return expiry_check()

    assert probe(ProbeStatus.OK, "AA:01", expires_in=80 * DAY).recorded == 0
    assert probe(ProbeStatus.MISMATCH, "BB:02", expires_in=60 * DAY).recorded == 1
    assert probe(ProbeStatus.MISMATCH, "BB:02", expires_in=60 * DAY).recorded == 0
    assert "Serves another certificate than the one deployed: Main shop" in mail.outbox[0].body
    # Another wrong certificate, about to expire: both facts are new.
    assert probe(ProbeStatus.MISMATCH, "CC:03", expires_in=5 * DAY).recorded == 2
    assert probe(ProbeStatus.FAILED).recorded == 1
    assert probe(ProbeStatus.FAILED).recorded == 0
    assert channel_thresholds() == [
        "probe-mismatch",
        "probe-mismatch",
        "served-7d",
        "probe-failed",
    ]
    assert "The certificate served expires: 5 days left" in mail.outbox[1].body


def test_a_hostname_that_does_not_resolve_is_said_so_in_the_digest_with_advice(channel):
    SalesChannel.objects.filter(pk=channel.pk).update(
        probe_status=ProbeStatus.FAILED,
        probe_failure=ProbeFailure.DNS,
        probe_checked_at=timezone.now(),
    )
    expiry_check()
    [message] = mail.outbox
    assert f"Hostname does not resolve: {channel.name}" in message.body
    assert f"{channel.hostname} does not resolve in DNS" in message.body
    assert f"Give {channel.hostname} an A/AAAA record" in message.body
    assert "TLS handshake" not in message.body


def test_a_managed_channel_waiting_for_its_first_certificate_is_not_a_probe_problem(acme):
    waiting = SalesChannel.objects.create(
        institution=acme,
        name="New shop",
        hostname="new.acme.test",
        ssl_mode=SalesChannel.SslMode.MANAGED,
        probe_status=ProbeStatus.FAILED,
        probe_failure=ProbeFailure.REFUSED,
    )
    assert expiry_check().recorded == 0
    SalesChannel.objects.filter(pk=waiting.pk).update(ssl_mode=SalesChannel.SslMode.UPLOADED)
    assert expiry_check().recorded == 1  # an uploaded certificate that fails is one


def test_channels_with_everything_recorded_cost_one_query(acme, channel, django_assert_num_queries):
    """The query for channels in trouble leaves out those whose findings are recorded: its
    episodes (in SQL) agree with those of the findings built (in Python)."""
    no_certificate = SalesChannel.objects.create(
        institution=acme,
        name="Other shop",
        hostname="other.acme.test",
        ssl_mode=SalesChannel.SslMode.UPLOADED,
        probe_status=ProbeStatus.FAILED,
    )
    SalesChannel.objects.filter(pk=channel.pk).update(
        renewal_failures=3,
        probe_status=ProbeStatus.MISMATCH,
        probe_fingerprint=":".join(["AB", "CD"] * 16),
    )
    now = timezone.now()
    assert findings.findings_collect(now=now) == 3
    assert sorted(
        Notification.objects.filter(channel__isnull=False).values_list("channel", "episode")
    ) == [
        (channel.pk, f"{channel.active_certificate_id}/ABCDABCDABCDABCD"),
        (channel.pk, f"certificate-{channel.active_certificate_id}"),
        (no_certificate.pk, "none/none"),
    ]
    with django_assert_num_queries(1):
        assert findings._channel_findings_record(now) == 0
    # Within the day thresholds of the wrong certificate served, the channel is looked at
    # (read, and its findings checked against those recorded), and its finding is recorded
    # once.
    SalesChannel.objects.filter(pk=channel.pk).update(probe_expires_at=now + 10 * DAY)
    assert findings._channel_findings_record(now) == 1
    with django_assert_num_queries(3):
        assert findings._channel_findings_record(now) == 0


def test_many_channels_in_trouble_are_recorded_in_batches(acme, monkeypatch):
    monkeypatch.setattr(findings, "BATCH_SIZE", 2)
    SalesChannel.objects.bulk_create(
        SalesChannel(
            institution=acme,
            name=f"Shop {index}",
            hostname=f"shop{index}.acme.test",
            ssl_mode=SalesChannel.SslMode.UPLOADED,
            probe_status=ProbeStatus.FAILED,
        )
        for index in range(5)
    )
    assert findings.findings_collect(now=timezone.now()) == 5
    assert findings.findings_collect(now=timezone.now()) == 0
    assert channel_thresholds() == ["probe-failed"] * 5


# --- webhooks -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(webhooks, "WEBHOOK_BACKOFF", (0.01, 0.01))


@pytest.fixture(autouse=True)
def _webhooks_on_loopback(settings):
    """The test webhook servers listen on 127.0.0.1, an internal address."""
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = True


def test_a_webhook_to_an_internal_address_is_not_posted(acme, upload, settings):
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = False
    upload(acme, name="Acme shop", days_left=5)
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        (digest,) = expiry_check().digests
    assert hook.bodies == []
    assert digest.webhook == "127.0.0.1 is an internal address (127.0.0.1), refused"
    assert digest.emailed  # the e-mail goes out all the same
    assert Notification.objects.get().webhook_error == digest.webhook


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://[::127.0.0.1]/hook", "::127.0.0.1 is an internal address"),
        ("http://[64:ff9b::7f00:1]/hook", "64:ff9b::7f00:1 is an internal address"),
        ("http://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1 is an internal address"),
        ("http://[2002:7f00:1::]/hook", "2002:7f00:1:: is an internal address"),
    ],
)
def test_a_webhook_to_an_ipv6_form_of_an_internal_address_is_not_posted(
    acme, upload, settings, monkeypatch, url, refused
):
    """IPv4-compatible, NAT64, IPv4-mapped and 6to4 forms of 127.0.0.1 (stored before the
    form refused them): the expiry check's delivery refuses them without connecting."""
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = False
    connected = []

    def create_connection(address, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError("not reachable from the tests")

    monkeypatch.setattr("urllib3.util.connection.create_connection", create_connection)
    upload(acme, name="Acme shop", days_left=5)
    acme.webhook_url = url
    acme.save()

    (digest,) = expiry_check().digests

    assert connected == []
    assert digest.webhook.startswith(refused)
    assert digest.emailed
    assert Notification.objects.get().webhook_error == digest.webhook


@pytest.mark.parametrize(
    ("url", "resolves_to", "refused"),
    [
        ("https://chat.example.com/hook", ["93.184.215.14"], ""),
        ("https://hooks.internal.test/x", ["10.0.0.5"], "hooks.internal.test is an internal"),
        ("https://mixed.test/x", ["93.184.215.14", "127.0.0.1"], "mixed.test is an internal"),
        ("https://nat64.test/x", ["64:ff9b::7f00:1"], "nat64.test is an internal"),
        ("https://compat.test/x", ["::127.0.0.1"], "compat.test is an internal"),
        ("https://sixtofour.test/x", ["2002:a9fe:a9fe::"], "sixtofour.test is an internal"),
        ("https://nat64-public.test/x", ["64:ff9b::5db8:d70e"], ""),
        ("http://169.254.169.254/latest/meta-data", [], "169.254.169.254 is an internal"),
        ("http://[::1]:8000/hook", [], "::1 is an internal"),
        ("http://localhost:8000/hook", [], "localhost is this machine"),
        ("https://chat.example.com:99999/hook", [], "the port is not a valid one"),
        ("https://no-such-host.test/x", None, ""),  # the POST fails on its own
    ],
)
def test_webhook_addresses_are_checked_when_posting(
    settings, monkeypatch, url, resolves_to, refused
):
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = False

    def getaddrinfo(host, port, **kwargs):
        if resolves_to is None:
            raise socket.gaierror("no such host")
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in resolves_to
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert webhooks.webhook_address_refusal(url, resolve=True).startswith(refused)


def test_a_webhook_name_answering_otherwise_the_second_time_is_not_followed(settings, monkeypatch):
    """DNS rebinding: the name resolves to a public address when checked, then to loopback.
    The POST goes to the address checked, never to the internal service."""
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(webhooks, "WEBHOOK_TIMEOUT", 0.5)
    real_getaddrinfo = socket.getaddrinfo
    answers = {"hooks.rebind.test": ["93.184.215.14"]}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = answers[host][0]
        answers[host] = ["127.0.0.1"]  # what it answers from now on
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    connected = []

    def create_connection(address, *args, **kwargs):
        connected.append(address[0])
        raise ConnectionRefusedError("not reachable from the tests")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr("urllib3.util.connection.create_connection", create_connection)
    with WebhookServer() as hook:
        url = f"http://hooks.rebind.test:{hook.server.server_port}/hook"
        error = webhooks.webhook_post(url, {"text": "hello"})
    assert hook.bodies == []
    assert connected == ["93.184.215.14"]  # the address checked, and nothing else
    # The next attempt resolves again, and is refused.
    assert error == "hooks.rebind.test is an internal address (127.0.0.1), refused"


def chat_on_loopback(monkeypatch):
    """chat.example.test resolves to 127.0.0.1 (where the test's webhook server listens)."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "chat.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_the_webhook_post_names_its_host_and_passes_credentials(monkeypatch):
    """Posted to the address resolved, with the URL's host name, port, path, query and
    credentials as typed."""
    chat_on_loopback(monkeypatch)
    with WebhookServer() as hook:
        port = hook.server.server_port
        url = f"http://bot:s%40cret@chat.example.test:{port}/hooks/T000?channel=ops"
        assert webhooks.webhook_post(url, {"text": "hello"}) == ""
    ((path, headers),) = hook.requests
    assert path == "/hooks/T000?channel=ops"
    assert headers["Host"] == f"chat.example.test:{port}"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"bot:s@cret").decode()
    assert headers["Content-Type"] == "application/json"
    assert hook.bodies == [{"text": "hello"}]


def test_the_answer_of_a_webhook_is_not_read(monkeypatch):
    """Only the status counts: an answer announcing a huge body that never comes does not
    hold the worker (nor would a huge one fill its memory)."""
    monkeypatch.setattr(webhooks, "WEBHOOK_TIMEOUT", 2.0)
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(100_000_000))
            self.end_headers()
            self.wfile.flush()
            done.wait(10)  # the body never comes

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        assert webhooks.webhook_post(url, {"text": "hello"}) == ""
    finally:
        done.set()
        thread.join(5)
        server.server_close()


def test_a_webhook_host_with_several_addresses_gets_the_first_that_answers(monkeypatch):
    """An address that refuses the connection (say, an IPv6 route that is down) falls back
    to the next one the name resolves to, all of them checked."""
    real_getaddrinfo = socket.getaddrinfo
    with WebhookServer() as hook:
        port = hook.server.server_port

        def getaddrinfo(host, port_, *args, **kwargs):
            if host == "chat.example.test":
                return [
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port_)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_)),
                ]
            return real_getaddrinfo(host, port_, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        # The server listens on 127.0.0.1 only: 127.0.0.2 refuses the connection.
        url = f"http://chat.example.test:{port}/hook"
        assert webhooks.webhook_post(url, {"text": "hello"}) == ""
    assert hook.bodies == [{"text": "hello"}]


@pytest.mark.parametrize(
    ("served_for", "error"),
    [("chat.example.test", ""), ("other.example.test", "could not connect after 3 attempts")],
)
def test_an_https_webhook_is_checked_against_its_host_name(
    pki, tmp_path, monkeypatch, served_for, error
):
    """Connected to the address resolved, the TLS certificate is still checked against the
    URL's host name (and the CA bundle: here the test CA stands in for certifi's)."""
    leaf = demo_pki.leaf_create(issuer=pki["root"], hostnames=[served_for])
    (tmp_path / "server.pem").write_bytes(leaf.certificate_pem + leaf.key_pem)
    (tmp_path / "ca.pem").write_bytes(pki["root"].certificate_pem)
    monkeypatch.setattr(certifi, "where", lambda: str(tmp_path / "ca.pem"))
    chat_on_loopback(monkeypatch)
    hook = WebhookServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    hook.server.socket = context.wrap_socket(hook.server.socket, server_side=True)
    with hook:
        url = f"https://chat.example.test:{hook.server.server_port}/hook"
        assert webhooks.webhook_post(url, {"text": "hello"}) == error
    assert hook.bodies == ([] if error else [{"text": "hello"}])


def test_the_webhook_gets_the_findings_as_json(acme, upload):
    certificate = upload(acme, name="Acme shop", hostnames=["shop.acme.test"], days_left=5)
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        report = expiry_check()
        expiry_check()
    assert report.digests[0].webhook == "delivered"
    assert len(hook.bodies) == 1
    payload = hook.bodies[0]
    assert payload["institution"] == {"name": "Acme Tickets", "slug": "acme-tickets"}
    assert payload["text"].startswith("certmgr: 1 finding for Acme Tickets")
    [finding] = payload["findings"]
    assert finding["name"] == "Acme shop"
    assert finding["hostnames"] == ["shop.acme.test"]
    assert finding["threshold"] == "7d"
    assert finding["days_left"] == 5
    assert finding["expires_at"] == certificate.expires_at.isoformat()
    assert finding["url"] == f"https://certmgr.example.test/certificates/{certificate.pk}/"
    assert Notification.objects.get().webhook_delivered_at is not None
    assert len(mail.outbox) == 1


def test_a_webhook_is_retried_then_delivered(acme, upload):
    upload(acme, days_left=5)
    with WebhookServer(statuses=[503, 502, 200]) as hook:
        acme.webhook_url = hook.url
        acme.save()
        report = expiry_check()
    assert report.digests[0].webhook == "delivered"
    assert len(hook.bodies) == 3


def test_a_failing_webhook_blocks_neither_the_email_nor_other_institutions(acme, opera, upload):
    upload(acme, name="Acme shop", days_left=5)
    upload(opera, name="Opera shop", days_left=5)
    with WebhookServer(statuses=[500]) as broken, WebhookServer() as working:
        acme.webhook_url = broken.url
        acme.save()
        opera.webhook_url = working.url
        opera.save()
        report = expiry_check()
    acme_digest, opera_digest = report.digests
    assert acme_digest.webhook == "HTTP 500 after 3 attempts"
    assert len(broken.bodies) == 3
    assert acme_digest.emailed and opera_digest.emailed
    assert opera_digest.webhook == "delivered"
    assert len(working.bodies) == 1
    assert len(mail.outbox) == 2
    failed = Notification.objects.get(institution=acme)
    assert failed.webhook_error == "HTTP 500 after 3 attempts"
    assert "secret" not in failed.webhook_error
    # Not posted again by the next runs.
    expiry_check()
    assert len(broken.bodies) == 3


def test_a_webhook_refused_for_good_is_not_retried(acme, upload):
    upload(acme, days_left=5)
    with WebhookServer(statuses=[404]) as hook:
        acme.webhook_url = hook.url
        acme.save()
        report = expiry_check()
    assert report.digests[0].webhook == "HTTP 404 after 1 attempt"
    assert len(hook.bodies) == 1


def test_an_unreachable_webhook_is_reported_in_plain_words(acme, upload):
    upload(acme, days_left=5)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    acme.webhook_url = f"http://127.0.0.1:{port}/hook"
    acme.save()
    report = expiry_check()
    assert report.digests[0].webhook == "could not connect after 3 attempts"
    assert report.digests[0].emailed


# --- a real SMTP server ---------------------------------------------------------------------


def test_the_digest_goes_through_a_real_smtp_server(acme, upload, settings):
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.envelopes = []

        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append(envelope)
            return "250 Message accepted for delivery"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.DEFAULT_FROM_EMAIL = "certmgr@platform.test"
        certificate = upload(acme, name="Acme shop", hostnames=["shop.acme.test"], days_left=5)
        report = expiry_check()
    finally:
        controller.stop()
    assert report.digests[0].emailed
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "certmgr@platform.test"
    assert sorted(envelope.rcpt_tos) == ["oncall@acme.test", "ops@acme.test"]
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert message["Subject"] == "[certmgr] Acme Tickets: 1 certificate finding"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Certificate expires in 5 days: Acme shop" in text
    assert f"https://certmgr.example.test/certificates/{certificate.pk}/" in html
    assert mail.outbox == []


# --- command and staff summary --------------------------------------------------------------


def test_the_command_prints_what_it_sent(acme, upload):
    upload(acme, name="Acme shop", days_left=5)
    from io import StringIO

    out = StringIO()
    call_command("check_expiry", stdout=out)
    printed = out.getvalue()
    assert "1 new finding(s) recorded." in printed
    assert "Acme Tickets: 1 finding(s) e-mailed to ops@acme.test, oncall@acme.test" in printed
    assert "Certificate expires in 5 days: Acme shop" in printed
    out = StringIO()
    call_command("check_expiry", stdout=out)
    assert "Nothing to send." in out.getvalue()


def test_staff_get_a_daily_summary_across_institutions(
    acme, opera, sam, alice, channel, upload, django_user_model
):
    sam.email = "sam@platform.test"
    sam.save()
    django_user_model.objects.create_user(
        "former", email="former@platform.test", is_staff=True, is_active=False
    )
    alice.email = "alice@acme.test"  # not staff
    alice.save()
    old = upload(acme, name="Old", days_left=-3)
    upload(acme, name="Renewed", days_left=80, replaces=old)
    upload(acme, name="Critical", days_left=2)
    upload(opera, name="Expired", days_left=-2)
    SalesChannel.objects.filter(pk=channel.pk).update(renewal_failures=3)
    assert staff_summary.staff_summary_send() == 1
    [message] = mail.outbox
    assert message.to == ["sam@platform.test"]
    assert message.subject == (
        "[certmgr] Daily summary: 1 expired, 1 critical, 1 channel needing action"
    )
    assert "- Acme Tickets: 2 valid, 0 expiring, 1 critical, 0 expired" in message.body
    assert "- Opera House: 0 valid, 0 expiring, 0 critical, 1 expired" in message.body
    assert "shop.acme.test (Acme Tickets): renewal failed 3 times in a row" in message.body
    assert "<td>Acme Tickets</td>" in message.alternatives[0][0]


def test_a_long_digest_lists_the_most_urgent_and_counts_the_rest(acme, upload, monkeypatch):
    monkeypatch.setattr(digests, "DIGEST_MAX_FINDINGS", 2)
    for days in (5, 2, 12):
        upload(acme, name=f"{days} days", days_left=days)
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        report = expiry_check()
    assert len(report.digests[0].findings) == 3
    body = mail.outbox[0].body
    assert "certmgr found 3 things" in body
    assert "2 days" in body and "5 days" in body and "12 days" not in body
    assert "... and 1 more, the least urgent" in body
    assert "https://certmgr.example.test/certificates/?institution=acme-tickets" in body
    payload = hook.bodies[0]
    assert payload["count"] == 3
    assert [finding["name"] for finding in payload["findings"]] == ["2 days", "5 days"]
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()


def test_findings_go_with_their_institution(acme, opera, upload, channel):
    """The finding's institution has no constraint of its own in the database (its
    certificate's and channel's hold it): deleting the institution (once its channels are,
    which protect their certificates) takes the findings all the same."""
    upload(acme, days_left=5)
    upload(opera, days_left=5)
    SalesChannel.objects.filter(pk=channel.pk).update(renewal_failures=3)
    findings.findings_collect(now=timezone.now())
    assert Notification.objects.filter(institution=acme).count() == 2
    acme.sales_channels.all().delete()
    acme.delete()
    assert list(Notification.objects.values_list("institution", flat=True)) == [opera.pk]
