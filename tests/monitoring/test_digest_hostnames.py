"""The digest says an IDN hostname as people read it, with its ASCII form beside it; the
webhook's JSON keeps the stored ASCII form for programs (monitoring/digests.py)."""

from django.core import mail

from monitoring import digests
from monitoring.delivery import expiry_check
from saleschannels.findings import Check, Finding, Reason

IDN = "tickets.xn--bcher-kva.example"
SHOWN = "tickets.bücher.example (tickets.xn--bcher-kva.example)"


def test_the_digest_shows_an_idn_in_unicode_beside_its_ascii_form(acme, make_certificate):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    make_certificate(acme, name="Bücher shop", hostnames=[IDN], days_left=5)
    expiry_check()
    (message,) = mail.outbox
    assert f"Hostnames: {SHOWN}" in message.body
    html, _ = message.alternatives[0]
    assert f"<td>{SHOWN}</td>" in html


def test_the_webhook_keeps_the_ascii_form_for_programs(acme):
    finding = digests.Finding(
        kind="certificate_expiry",
        threshold="7d",
        title="Certificate expires in 5 days",
        name="Bücher shop",
        hostnames=[IDN],
        expires_at=None,
        days_left=5,
        when="5 days left",
        action="Renew it.",
        url="https://certmgr.example.test/certificates/1/",
    )
    payload = digests.webhook_payload(acme, [finding])
    assert payload["findings"][0]["hostnames"] == [IDN]
    assert f"Bücher shop ({SHOWN})" in payload["text"]


def test_a_check_names_an_idn_in_unicode_too():
    finding = Finding(Check.DNS, Reason.DNS_NXDOMAIN, {"name": IDN, "hostname": IDN})
    assert finding.words == f"{SHOWN} does not exist in DNS (NXDOMAIN)."
