"""ACME Renewal Information done fully (RFC 9773, https://www.rfc-editor.org/rfc/rfc9773):
renewal orders name the certificate they replace, ARI is asked about twice a day per
certificate and not at every renew_due run, and a window the CA moves earlier moves the
renewal into it and is said on the channel's page.

A real Pebble behind the fault proxy (tests/acme_fault_proxy.py), which plays the CA's ARI
and records every newOrder payload it receives; the channel's hostname is verified and the
real pre-flight runs before each order.
"""

import base64
import logging
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from django.urls import reverse
from django.utils import timezone

from acme_client import ari, protocol, services, tasks
from acme_client.models import AcmeOrder
from certmgr.celery import app
from core.models import AuditEvent
from saleschannels.models import SalesChannel
from tests.acme_client.issuing import issue

ALREADY_REPLACED = {
    "type": "urn:ietf:params:acme:error:alreadyReplaced",
    "detail": "the certificate has already been replaced",
}


@pytest.fixture
def channel(acme, make_verified_channel):
    return make_verified_channel(acme, name="Main", hostname="shop.acme.test", ssl_mode="managed")


def ari_id(certificate_pem: str) -> str:
    """RFC 9773 section 4.1, written out here apart from the code under test."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    key_id = certificate.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier
    ).value.key_identifier
    serial = certificate.serial_number
    serial_der = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(key_id)}.{b64(serial_der)}"


def far_window():
    """Twenty days from now, in whole seconds as the CA says them (RFC 3339)."""
    start = (timezone.now() + timedelta(days=20)).replace(microsecond=0)
    return start, start + timedelta(days=2)


def orders_sent(proxy) -> list[dict]:
    """The newOrder payloads the CA answered, those whose nonce Pebble rejected (400: it
    rejects 5 % on its own; the client sends them again) left out."""
    statuses = [s for m, path, s in proxy.requests if m == "POST" and path == "/order-plz"]
    return [
        payload for payload, status in zip(proxy.new_orders, statuses, strict=True) if status != 400
    ]


def new_order_statuses(proxy) -> list[int]:
    """Statuses of the newOrder POSTs; Pebble's own nonce rejections (400) left out."""
    return [s for m, path, s in proxy.requests if "order-plz" in path and m == "POST" and s != 400]


def test_the_certificate_identifier_is_the_one_of_rfc_9773():
    """The example of RFC 9773 section 4.1: that keyIdentifier and serial 0x0087654321."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ari.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x87654321)
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2025, 4, 1, tzinfo=UTC))
        .add_extension(
            x509.AuthorityKeyIdentifier(
                key_identifier=bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4"),
                authority_cert_issuer=None,
                authority_cert_serial_number=None,
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(Encoding.PEM).decode()
    assert protocol.ari_certificate_id(pem) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_retry_after_is_honoured_within_an_hour_and_a_day():
    assert ari.ari_interval(None) == timedelta(hours=12)
    assert ari.ari_interval(3 * 3600) == timedelta(hours=3)
    assert ari.ari_interval(60) == timedelta(hours=1)
    assert ari.ari_interval(10 * 86400) == timedelta(hours=24)


@pytest.mark.django_db(transaction=True)
def test_a_first_order_carries_no_replaces(proxy, channel):
    proxy.renewal_info(start=far_window()[0], end=far_window()[1])
    assert issue(channel) is not None
    assert len(orders_sent(proxy)) == 1
    assert "replaces" not in orders_sent(proxy)[0]
    assert AcmeOrder.objects.get().replaces == ""


@pytest.mark.django_db(transaction=True)
def test_a_renewal_names_the_certificate_it_replaces(proxy, channel):
    proxy.renewal_info(start=far_window()[0], end=far_window()[1])
    first = issue(channel)
    second = issue(channel)
    assert second is not None and second.replaces_id == first.pk
    expected = ari_id(first.certificate_pem)
    assert proxy.new_orders[-1]["replaces"] == expected
    assert new_order_statuses(proxy) == [201, 201]
    order = AcmeOrder.objects.filter(certificate=second).get()
    assert order.replaces == expected and order.carried_replaces


@pytest.mark.django_db(transaction=True)
def test_no_replaces_when_the_ca_offers_no_ari(proxy, channel):
    issue(channel)
    assert issue(channel) is not None
    assert [payload.get("replaces") for payload in orders_sent(proxy)] == [None, None]


@pytest.mark.django_db(transaction=True)
def test_a_ca_refusing_replaces_is_asked_again_without_it(proxy, channel):
    proxy.renewal_info(start=far_window()[0], end=far_window()[1])
    first = issue(channel)
    proxy.fail_next("order-plz", 409, ALREADY_REPLACED, method="POST", payload_has="replaces")
    second = issue(channel)
    assert second is not None
    assert proxy.faults_pending() == 0
    assert orders_sent(proxy)[-2]["replaces"] == ari_id(first.certificate_pem)
    assert "replaces" not in orders_sent(proxy)[-1]
    assert new_order_statuses(proxy) == [201, 409, 201]
    order = AcmeOrder.objects.filter(certificate=second).get()
    assert order.replaces == "" and not order.carried_replaces
    channel.refresh_from_db()
    assert channel.renewal_failures == 0


@pytest.mark.django_db(transaction=True)
def test_ari_is_asked_at_most_once_per_interval(proxy, channel):
    start, end = far_window()
    proxy.renewal_info(start=start, end=end)
    certificate = issue(channel)
    # Asked once, right after the issuance (RFC 9773 section 4.3).
    assert proxy.renewal_info_asked == [ari_id(certificate.certificate_pem)]
    for _ in range(5):
        assert services.channels_renew_due(queue=lambda channel_id, claim: None) == 0
        assert ari.channels_ari_refresh() == 0
    assert len(proxy.renewal_info_asked) == 1
    channel.refresh_from_db()
    assert channel.ari_next_check_at - channel.ari_checked_at == timedelta(hours=12)

    later = channel.ari_checked_at + timedelta(hours=12, minutes=1)
    assert ari.channels_ari_refresh(now=later) == 1
    assert ari.channels_ari_refresh(now=later) == 0
    assert ari.channels_ari_refresh(now=later + timedelta(hours=11)) == 0
    assert len(proxy.renewal_info_asked) == 2


@pytest.mark.django_db(transaction=True)
def test_the_cas_retry_after_sets_the_next_ask(proxy, channel):
    start, end = far_window()
    proxy.renewal_info(start=start, end=end, retry_after=3 * 3600)
    issue(channel)
    channel.refresh_from_db()
    assert channel.ari_next_check_at - channel.ari_checked_at == timedelta(hours=3)
    proxy.renewal_info(start=start, end=end, retry_after=30)  # below the floor of an hour
    later = channel.ari_next_check_at + timedelta(seconds=1)
    assert ari.channels_ari_refresh(now=later) == 1
    channel.refresh_from_db()
    assert channel.ari_checked_at == later
    assert channel.ari_next_check_at == later + timedelta(hours=1)


@pytest.mark.django_db(transaction=True)
def test_a_window_moved_earlier_moves_the_renewal_and_is_said(
    proxy, channel, client, alice, caplog
):
    start, end = far_window()
    proxy.renewal_info(start=start, end=end)
    certificate = issue(channel)
    channel.refresh_from_db()
    planned = channel.renewal_due_at
    assert start <= planned <= end

    # An incident: the CA asks for renewal within hours.
    later = channel.ari_checked_at + timedelta(hours=12, minutes=1)
    # Whole seconds, as the CA says them (RFC 3339).
    new_start = (later + timedelta(hours=1)).replace(microsecond=0)
    new_end = new_start + timedelta(hours=2)
    proxy.renewal_info(start=new_start, end=new_end)
    with caplog.at_level(logging.INFO, logger="acme_client.ari"):
        assert ari.channels_ari_refresh(now=later) == 1
    channel.refresh_from_db()
    assert new_start <= channel.renewal_due_at <= new_end
    assert channel.ari_window_moved_at == later
    assert (channel.ari_window_start, channel.ari_window_end) == (new_start, new_end)
    event = AuditEvent.objects.get(action=AuditEvent.Action.CHANNEL_RENEWAL_WINDOW_MOVED)
    assert event.target_id == channel.pk
    assert event.details["planned"] == planned.isoformat()
    moved = [r for r in caplog.records if getattr(r, "event", "") == "acme_ari_window_moved"]
    assert len(moved) == 1 and moved[0].channel_id == channel.pk

    client.force_login(alice)
    page = client.get(reverse("channel_detail", args=[channel.pk])).content.decode()
    assert f"The CA moved the renewal window earlier (ARI) on {later:%Y-%m-%d %H:%M} UTC" in page
    assert "The CA moved the renewal window earlier (ARI)</li>" in page  # the history

    # Acted on inside the new window: renew_due claims it once it is due, and the renewal
    # names the certificate it replaces.
    queued = []
    due = channel.renewal_due_at + timedelta(seconds=1)
    assert services.channels_renew_due(now=due, queue=lambda c, claim: queued.append(claim)) == 1
    renewed = services.channel_certificate_issue(channel_id=channel.pk, claim=queued[0])
    assert renewed is not None
    assert proxy.new_orders[-1]["replaces"] == ari_id(certificate.certificate_pem)
    channel.refresh_from_db()
    assert channel.ari_window_moved_at is None  # said of the certificate it replaced


@pytest.mark.django_db(transaction=True)
def test_a_window_that_still_holds_the_plan_changes_nothing(proxy, channel):
    start, end = far_window()
    proxy.renewal_info(start=start, end=end)
    issue(channel)
    channel.refresh_from_db()
    planned = channel.renewal_due_at
    later = channel.ari_checked_at + timedelta(hours=13)
    assert ari.channels_ari_refresh(now=later) == 1
    channel.refresh_from_db()
    assert channel.renewal_due_at == planned
    assert channel.ari_window_moved_at is None
    assert not AuditEvent.objects.filter(
        action=AuditEvent.Action.CHANNEL_RENEWAL_WINDOW_MOVED
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_several_refresh_runs_ask_once(proxy, channel):
    """Beats running at the same moment: the ask is claimed by a conditional update."""
    start, end = far_window()
    proxy.renewal_info(start=start, end=end)
    issue(channel)
    channel.refresh_from_db()
    later = channel.ari_checked_at + timedelta(hours=12, minutes=1)
    stale = SalesChannel.objects.get(pk=channel.pk)  # what a second beat read
    assert ari.channels_ari_refresh(now=later) == 1
    assert not ari._ask_claim(stale, later)
    assert len(proxy.renewal_info_asked) == 2


def test_beat_asks_ari_through_its_own_task(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["ari-refresh"]
    assert entry["task"] == "acme_client.tasks.ari_refresh"
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


@pytest.mark.django_db
def test_the_task_asks_nothing_when_no_certificate_is_due():
    assert tasks.ari_refresh() == 0
