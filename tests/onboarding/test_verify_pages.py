"""Proof of ownership through the pages (README, "Onboarding a hostname"): the instructions on
the channel page, *Verify now* against a real DNS server (pebble-challtestsrv) and through
the HTTP token that the app answers itself, who may press it, what it unblocks, and the beat
that looks again on a growing interval."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, strip_tags

from acme_client import ownership
from acme_client import tasks as acme_tasks
from core.models import AuditEvent
from onboarding.services import verification_interval
from saleschannels import services as channel_services
from saleschannels.models import ChannelStatus, SalesChannel

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "shop.acme.test"


@pytest.fixture
def dns_settings(challtestsrv, settings):
    """The app asks the real DNS server; the HTTP token is fetched from the live server."""
    settings.CERTMGR_DNS_RESOLVERS = [challtestsrv.dns_address]
    settings.CERTMGR_DNS_TIMEOUT = 2.0
    settings.CERTMGR_EDGE_ADDRESSES = ["127.0.0.1"]
    settings.CERTMGR_PROBE_TIMEOUT = 2.0
    # Nothing listens on port 9 of 127.0.0.1: the HTTP token is not found unless a test says.
    settings.ACME_HTTP01_PORT = 9
    return challtestsrv


@pytest.fixture
def channel(acme, alice):
    return channel_services.channel_create(
        institution=acme, name="Shop", hostname=HOST, actor=alice
    )


@pytest.fixture
def queued(monkeypatch):
    """Issuances queued (the task's delay), instead of a broker."""
    calls = []
    monkeypatch.setattr(acme_tasks.issue_certificate, "delay", lambda *args: calls.append(args))
    return calls


def verify(client, channel):
    return client.post(reverse("channel_verify", args=[channel.pk]), follow=True)


def test_the_page_says_how_to_prove_control(as_alice, channel):
    page = as_alice.get(channel.get_absolute_url()).content.decode()
    assert "Proof of ownership" in page and "Not verified" in page
    # The name may wrap at its dots (<span> and <wbr>, core/templatetags/hostnames.py); its text
    # is what the Copy button copies.
    txt_name = re.search(r'<code id="txt-name">(.*?)</code>', page).group(1)
    assert strip_tags(txt_name) == f"_certmgr-challenge.{HOST}"
    assert f'<code id="txt-value">{channel.verification_token}</code>' in page
    assert (
        f"http://{HOST}/.well-known/certmgr-challenge/{channel.verification_token}"
        in strip_tags(page)
    )
    assert 'data-copy="txt-value"' in page
    assert f'action="{reverse("channel_verify", args=[channel.pk])}"' in page


def test_a_viewer_sees_the_instructions_but_cannot_verify(client, bob, channel, dns_settings):
    client.force_login(bob)
    page = client.get(channel.get_absolute_url()).content.decode()
    assert channel.verification_token in page
    assert "Verify now" not in page
    assert client.post(reverse("channel_verify", args=[channel.pk])).status_code == 403


def test_a_txt_record_with_the_token_verifies_and_the_audit_trail_says_how(
    as_alice, channel, dns_settings
):
    dns_settings.txt_set(f"_certmgr-challenge.{HOST}", channel.verification_token)
    page = verify(as_alice, channel).content.decode()
    assert f"{HOST} is verified." in page
    channel.refresh_from_db()
    assert channel.hostname_verified_by == "txt" and channel.hostname_verified_at is not None
    event = AuditEvent.objects.get(action=AuditEvent.Action.CHANNEL_HOSTNAME_VERIFIED)
    assert event.details["method"] == "txt"
    assert "Verified" in page and "TXT record" in page
    assert "Hostname ownership verified (TXT record)" in page  # the history says how

    # The proof is needed once: removing the record later changes nothing.
    dns_settings.txt_clear(f"_certmgr-challenge.{HOST}")
    assert "is verified already" in verify(as_alice, channel).content.decode()


def test_a_wrong_or_missing_record_is_named_and_the_channel_stays_unverified(
    as_alice, channel, dns_settings
):
    channel_services.channel_set_ssl_mode(channel=channel, mode="managed", actor=None)
    dns_settings.txt_set(f"_certmgr-challenge.{HOST}", "certmgr-someone-elses-token")
    page = verify(as_alice, channel).content.decode()
    assert f"No proof of ownership found for {HOST} yet" in page
    words = (
        f"The TXT record _certmgr-challenge.{HOST} exists but does not hold this channel's token."
    )
    assert escape(words) in page
    advice = (
        f'Set the TXT record _certmgr-challenge.{HOST} to the value "{channel.verification_token}".'
    )
    assert escape(advice) in page
    channel.refresh_from_db()
    assert channel.hostname_verified_at is None
    assert channel.status == ChannelStatus.UNVERIFIED
    assert channel.status_reason == "txt_wrong"
    assert channel.verification_attempts == 1

    dns_settings.txt_clear(f"_certmgr-challenge.{HOST}")
    page = verify(as_alice, channel).content.decode()
    assert escape(f"There is no TXT record _certmgr-challenge.{HOST}.") in page
    assert SalesChannel.objects.get().status_reason == "txt_missing"


def test_the_http_token_answered_by_the_app_itself_verifies(
    as_alice, channel, dns_settings, live_server, settings
):
    dns_settings.a_set(HOST, ["127.0.0.1"])
    settings.ACME_HTTP01_PORT = int(live_server.url.rsplit(":", 1)[1])
    verify(as_alice, channel)
    channel.refresh_from_db()
    assert channel.hostname_verified_by == "http"


def test_verifying_a_managed_channel_queues_its_first_order(
    as_alice, channel, dns_settings, queued
):
    channel_services.channel_set_ssl_mode(channel=channel, mode="managed", actor=None)
    assert queued == []  # nothing is ordered for an unverified name
    dns_settings.txt_set(f"_certmgr-challenge.{HOST}", channel.verification_token)
    verify(as_alice, channel)
    assert len(queued) == 1 and queued[0][0] == channel.pk
    assert SalesChannel.objects.get().status == ChannelStatus.CHECKING


def test_renew_now_on_an_unverified_channel_says_to_prove_control_first(as_alice, channel, queued):
    channel_services.channel_set_ssl_mode(channel=channel, mode="managed", actor=None)
    renew_url = reverse("channel_renew", args=[channel.pk])
    assert renew_url not in as_alice.get(channel.get_absolute_url()).content.decode()
    page = as_alice.post(renew_url, follow=True)
    assert f"Prove control of {HOST} first" in page.content.decode()
    assert queued == []


def test_the_beat_looks_again_on_a_growing_interval(channel, dns_settings, settings, queued):
    settings.CERTMGR_VERIFY_INTERVAL = 60
    channel_services.channel_set_ssl_mode(channel=channel, mode="managed", actor=None)
    now = timezone.now()
    assert ownership.channels_verify_due(now) == 1
    channel.refresh_from_db()
    assert channel.verification_next_check_at - now == timedelta(seconds=60)
    assert ownership.channels_verify_due(now) == 0  # not due again yet
    assert ownership.channels_verify_due(now + timedelta(seconds=61)) == 1
    channel.refresh_from_db()
    assert channel.verification_attempts == 2
    assert [verification_interval(n).total_seconds() for n in (1, 2, 3, 12, 20)] == [
        60,
        120,
        240,
        86400,
        86400,
    ]
    # The record appears: the next look verifies and queues the first order.
    dns_settings.txt_set(f"_certmgr-challenge.{HOST}", channel.verification_token)
    assert ownership.channels_verify_due(now + timedelta(days=2)) == 1
    assert SalesChannel.objects.get().hostname_verified_by == "txt"
    assert len(queued) == 1


def test_channels_that_need_no_proof_are_not_looked_at(channel, dns_settings):
    # No SSL, no Apple Pay: nothing depends on the proof.
    assert ownership.channels_verify_due(timezone.now()) == 0


def test_the_status_section_refreshes_itself_only_while_something_is_under_way(as_alice, channel):
    panel_url = reverse("channel_status_panel", args=[channel.pk])
    page = as_alice.get(channel.get_absolute_url()).content.decode()
    assert "data-refresh" not in page
    SalesChannel.objects.filter(pk=channel.pk).update(
        ssl_mode="managed", status=ChannelStatus.ISSUING
    )
    page = as_alice.get(channel.get_absolute_url()).content.decode()
    assert f'data-refresh="{panel_url}"' in page
    assert "channel-status.js" in page
    fragment = as_alice.get(panel_url).content.decode()
    assert fragment.lstrip().startswith('<section id="channel-status"')
    assert "Certificate being issued" in fragment
