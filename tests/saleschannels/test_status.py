"""The one status of a sales channel (saleschannels/status.py): what each state implies, the
words and advice, the signal on change only, what time changes, and what a hostname change
or a staff approval does to the proof of ownership."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from saleschannels import services
from saleschannels.findings import Reason
from saleschannels.models import ChannelStatus, SalesChannel
from saleschannels.status import (
    channel_status_changed,
    status_set,
    status_settle,
    status_shown,
    statuses_refresh,
)

pytestmark = pytest.mark.django_db

HOST = "shop.acme.test"


@pytest.fixture
def channel(acme):
    return SalesChannel.objects.create(institution=acme, name="Shop", hostname=HOST)


@pytest.fixture
def received():
    events = []

    def receive(sender, **event):
        events.append(event)

    channel_status_changed.connect(receive)
    yield events
    channel_status_changed.disconnect(receive)


def test_a_new_channel_has_no_ssl_its_own_token_and_no_proof(acme, channel):
    other = SalesChannel.objects.create(institution=acme, name="Other", hostname="o.acme.test")
    assert channel.status == ChannelStatus.NONE
    assert channel.verification_token.startswith("certmgr-")
    assert channel.verification_token != other.verification_token
    assert channel.hostname_verified_at is None
    assert channel.verification_txt_name == "_certmgr-challenge.shop.acme.test"


def test_the_status_follows_the_ssl_mode_and_the_proof(acme, alice, channel, make_certificate):
    certificate = make_certificate(acme, hostnames=[HOST])
    services.channel_set_ssl_mode(
        channel=channel, mode="uploaded", certificate=certificate, actor=alice
    )
    assert SalesChannel.objects.get().status == ChannelStatus.UPLOADED

    services.channel_set_ssl_mode(channel=channel, mode="managed", actor=alice)
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.UNVERIFIED
    assert "until its owner proves control" in status_shown(channel).words

    assert services.channel_hostname_verified_mark(channel=channel, method="txt", actor=None)
    channel.refresh_from_db()
    # Verified, still serving the uploaded certificate: the first order is pending.
    assert channel.status == ChannelStatus.CHECKING

    services.channel_set_ssl_mode(channel=channel, mode="none", actor=alice)
    assert SalesChannel.objects.get().status == ChannelStatus.NONE


def test_a_managed_certificate_is_active_then_due_then_failing(acme, channel, make_certificate):
    managed = make_certificate(acme, hostnames=[HOST], source="managed")
    now = timezone.now()
    SalesChannel.objects.filter(pk=channel.pk).update(
        ssl_mode="managed",
        active_certificate=managed,
        hostname_verified_at=now,
        renewal_due_at=now + timedelta(days=30),
    )
    channel.refresh_from_db()
    assert status_settle(channel)
    assert channel.status == ChannelStatus.ACTIVE

    later = now + timedelta(days=31)
    assert statuses_refresh(later) == 1
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.RENEWAL_DUE
    assert statuses_refresh(later) == 0  # settled: nothing to do the second time

    expired = now + timedelta(days=61)
    assert statuses_refresh(expired) == 1
    assert SalesChannel.objects.get().status == ChannelStatus.EXPIRED


def test_an_expired_uploaded_certificate_shows_as_expired(acme, alice, channel, make_certificate):
    certificate = make_certificate(acme, hostnames=[HOST], days_left=1)
    services.channel_set_ssl_mode(
        channel=channel, mode="uploaded", certificate=certificate, actor=alice
    )
    assert statuses_refresh(timezone.now() + timedelta(days=2)) == 1
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.EXPIRED
    assert status_shown(channel).words == "The certificate served has expired."


def test_the_signal_goes_out_on_commit_and_only_when_the_status_changes(
    channel, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert status_set(
            channel,
            ChannelStatus.WAITING_DNS,
            reason=Reason.DNS_ELSEWHERE,
            params={"found": ["203.0.113.9"], "edge": ["198.51.100.1"], "cname_hint": ""},
        )
        assert received == []  # not before the commit
    assert len(received) == 1
    event = received[0]
    assert (event["old"], event["new"], event["reason"]) == ("none", "waiting_dns", "dns_elsewhere")
    assert event["words"] == (
        "shop.acme.test points at 203.0.113.9, not at the platform (198.51.100.1)."
    )

    with django_capture_on_commit_callbacks(execute=True):
        # Same status, other reason: stored, but no change to announce.
        assert not status_set(channel, ChannelStatus.WAITING_DNS, reason=Reason.DNS_NXDOMAIN)
    assert len(received) == 1
    assert SalesChannel.objects.get().status_reason == "dns_nxdomain"


def test_words_and_advice_come_from_the_typed_reason(channel):
    status_set(
        channel,
        ChannelStatus.WAITING_CAA,
        reason=Reason.CAA_FORBIDS,
        params={"name": "acme.test", "allowed": ["sectigo.com"], "ca": "letsencrypt.org"},
    )
    shown = status_shown(SalesChannel.objects.get())
    assert shown.label == "Waiting for CAA"
    assert (
        shown.words == "The CAA records at acme.test allow only sectigo.com, not letsencrypt.org."
    )
    assert shown.advice == 'Add a CAA record at acme.test: 0 issue "letsencrypt.org".'


def test_an_unknown_stored_reason_reads_as_an_internal_error(channel):
    SalesChannel.objects.filter(pk=channel.pk).update(status="issuance_failing", status_reason="x")
    assert "unexpected error" in status_shown(SalesChannel.objects.get()).words


def test_a_new_hostname_must_be_proved_anew_with_a_new_token(acme, alice, channel):
    services.channel_hostname_verified_mark(channel=channel, method="txt", actor=None)
    token = SalesChannel.objects.get().verification_token
    services.channel_update(channel=channel, name="Shop", hostname="new.acme.test", actor=alice)
    channel.refresh_from_db()
    assert channel.hostname_verified_at is None
    assert channel.verification_token != token
    # Renaming alone keeps the proof.
    services.channel_hostname_verified_mark(channel=channel, method="txt", actor=None)
    services.channel_update(channel=channel, name="Renamed", hostname="new.acme.test", actor=alice)
    assert SalesChannel.objects.get().hostname_verified_at is not None


def test_a_verification_is_audited_once(channel):
    assert services.channel_hostname_verified_mark(channel=channel, method="http", actor=None)
    assert not services.channel_hostname_verified_mark(channel=channel, method="txt", actor=None)
    events = AuditEvent.objects.filter(action=AuditEvent.Action.CHANNEL_HOSTNAME_VERIFIED)
    assert [event.details["method"] for event in events] == ["http"]
    assert SalesChannel.objects.get().hostname_verified_by == "http"


def test_staff_approve_a_hostname_in_the_admin_under_their_name(channel, client, sam):
    sam.is_superuser = True  # every admin permission, as seed_demo makes staff
    sam.save(update_fields=["is_superuser"])
    client.force_login(sam)
    response = client.post(
        reverse("admin:saleschannels_saleschannel_changelist"),
        {"action": "hostname_approve", "_selected_action": [channel.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 hostname(s) approved." in response.content.decode()
    channel.refresh_from_db()
    assert channel.hostname_verified_by == "staff"
    event = AuditEvent.objects.get(action=AuditEvent.Action.CHANNEL_HOSTNAME_VERIFIED)
    assert event.actor == sam
    assert event.details == {"method": "staff"}


def test_a_queued_renewal_stays_queued_until_the_issuance_moves_on(acme, channel, make_certificate):
    # Queued for the CA's rate limits (acme_client/deferral.py): what the renewal's state
    # implies meanwhile (due, even failing before) does not overwrite it.
    managed = make_certificate(acme, hostnames=[HOST], source="managed")
    now = timezone.now()
    SalesChannel.objects.filter(pk=channel.pk).update(
        ssl_mode="managed",
        active_certificate=managed,
        hostname_verified_at=now,
        renewal_due_at=now - timedelta(hours=1),
    )
    channel.refresh_from_db()
    status_set(channel, ChannelStatus.QUEUED, reason=Reason.CA_BUDGET_ORDERS.value)
    assert not status_settle(channel)
    assert statuses_refresh(now) == 0
    SalesChannel.objects.filter(pk=channel.pk).update(renewal_failures=2)
    channel.refresh_from_db()
    assert not status_settle(channel)
    assert channel.status == ChannelStatus.QUEUED
    # Renewed meanwhile (due later): active again.
    SalesChannel.objects.filter(pk=channel.pk).update(
        renewal_failures=0, renewal_due_at=now + timedelta(days=30)
    )
    channel.refresh_from_db()
    assert status_settle(channel)
    assert channel.status == ChannelStatus.ACTIVE
