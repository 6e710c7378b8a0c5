"""Claims and the renew_due schedule: due channels are claimed once, whoever asks; only
channels whose hostname is verified are ordered for, and each order follows a pre-flight
(faked here: tests/acme_client/conftest.py; tests/acme_client/test_preflight_pebble.py runs
the real one)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from acme_client import protocol, services
from acme_client.models import AcmeOrder
from saleschannels.findings import Check, Finding, Reason
from saleschannels.models import ChannelStatus, SalesChannel
from saleschannels.status import status_shown
from tests.support import port_free

pytestmark = pytest.mark.django_db


@pytest.fixture
def managed(acme, make_verified_channel):
    return make_verified_channel(acme, name="Acme", hostname="shop.acme.test", ssl_mode="managed")


def queued_by(runs: int) -> list[int]:
    queued = []
    for _ in range(runs):
        services.channels_renew_due(queue=lambda channel_id, claim: queued.append(channel_id))
    return queued


def test_a_channel_without_a_certificate_is_due_and_claimed_once(managed):
    assert queued_by(2) == [managed.pk]
    managed.refresh_from_db()
    assert managed.renewal_claim and managed.renewal_claimed_until > timezone.now()


def test_a_claim_is_taken_with_a_conditional_update(managed):
    first = services.channel_issuance_claim(channel_id=managed.pk)
    second = services.channel_issuance_claim(channel_id=managed.pk)
    assert first and second is None


def test_an_expired_claim_can_be_taken_again(managed):
    services.channel_issuance_claim(channel_id=managed.pk)
    later = timezone.now() + timedelta(hours=1)
    assert services.channel_issuance_claim(channel_id=managed.pk, now=later)


def test_channels_not_due_backing_off_or_not_managed_are_left_alone(
    acme, managed, make_verified_channel
):
    now = timezone.now()
    managed.renewal_due_at = now + timedelta(days=10)
    managed.save()
    make_verified_channel(
        acme,
        name="Backing off",
        hostname="b.acme.test",
        ssl_mode="managed",
        renewal_next_attempt_at=now + timedelta(minutes=5),
    )
    make_verified_channel(acme, name="Uploaded", hostname="u.acme.test")
    assert queued_by(1) == []


def test_a_channel_whose_hostname_is_not_verified_is_never_due(acme):
    SalesChannel.objects.create(
        institution=acme, name="Unproved", hostname="n.acme.test", ssl_mode="managed"
    )
    assert queued_by(1) == []


def test_a_channel_past_its_renewal_time_is_due(managed):
    managed.renewal_due_at = timezone.now() - timedelta(seconds=1)
    managed.save()
    assert queued_by(1) == [managed.pk]


def test_an_issuance_without_our_claim_does_nothing(managed):
    services.channel_issuance_claim(channel_id=managed.pk)
    assert services.channel_certificate_issue(channel_id=managed.pk, claim="not-ours") is None
    assert not managed.acme_orders.exists()


def test_an_issuance_queued_for_a_channel_deleted_since_does_nothing(managed):
    channel_id = managed.pk
    claim = services.channel_issuance_claim(channel_id=channel_id)
    managed.delete()
    assert services.channel_certificate_issue(channel_id=channel_id, claim=claim) is None
    assert not AcmeOrder.objects.exists()


def test_setting_a_channel_to_managed_queues_its_issuance(
    client, alice, acme, django_capture_on_commit_callbacks, monkeypatch, make_verified_channel
):
    from acme_client import tasks

    sent = []
    monkeypatch.setattr(tasks.issue_certificate, "delay", lambda *args: sent.append(args))
    channel = make_verified_channel(acme, name="Acme", hostname="x.acme.test")
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/saleschannels/{channel.pk}/ssl/", {"mode": "managed"})
    channel.refresh_from_db()
    assert sent == [(channel.pk, channel.renewal_claim)]


def test_renew_now_needs_the_manager_role_and_a_managed_channel(
    client, alice, bob, managed, django_capture_on_commit_callbacks, monkeypatch
):
    from acme_client import tasks

    sent = []
    monkeypatch.setattr(tasks.issue_certificate, "delay", lambda *args: sent.append(args))
    url = f"/saleschannels/{managed.pk}/renew/"
    client.force_login(bob)
    assert client.post(url).status_code == 403
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url)
        client.post(url)  # already in progress: not queued twice
    assert len(sent) == 1


def test_switching_to_managed_orders_nothing_when_a_scheduler_got_the_certificate_meanwhile(
    client, alice, acme, django_capture_on_commit_callbacks, monkeypatch, make_verified_channel
):
    """The switch commits (the channel is due), then the web process deploys and queues: in
    between, renew_due on a worker can claim the channel and its issuance finish. The web
    process must not order a second certificate (seen in tests/scaleout with two beats)."""
    from acme_client import tasks
    from saleschannels import services as channel_services

    sent = []
    monkeypatch.setattr(tasks.issue_certificate, "delay", lambda *args: sent.append(args))
    deploy = channel_services._deploy
    by_scheduler = []

    def deploy_while_a_scheduler_issues(channel, **options):
        deploy(channel, **options)
        by_scheduler.extend(queued_by(1))
        # What the worker's switch does once the certificate is stored: claim released,
        # next renewal far ahead.
        SalesChannel.objects.filter(pk=channel.pk).update(
            renewal_claim="",
            renewal_claimed_until=None,
            renewal_due_at=timezone.now() + timedelta(days=60),
        )

    monkeypatch.setattr(channel_services, "_deploy", deploy_while_a_scheduler_issues)
    channel = make_verified_channel(acme, name="Acme", hostname="x.acme.test")
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/saleschannels/{channel.pk}/ssl/", {"mode": "managed"})
    assert by_scheduler == [channel.pk]
    assert sent == []


def test_a_claimed_channel_whose_hostname_is_not_verified_gets_no_order(acme, preflight_passes):
    channel = SalesChannel.objects.create(
        institution=acme, name="Unproved", hostname="n.acme.test", ssl_mode="managed"
    )
    claim = services.channel_issuance_claim(channel_id=channel.pk)
    assert services.channel_certificate_issue(channel_id=channel.pk, claim=claim) is None
    channel.refresh_from_db()
    assert not channel.acme_orders.exists()
    assert preflight_passes == []  # not even checked: nothing reaches the CA
    assert (channel.renewal_claim, channel.renewal_claimed_until) == ("", None)
    assert channel.status == ChannelStatus.UNVERIFIED


def unreachable_issue(channel, settings) -> SalesChannel:
    """Issue for `channel` against an ACME directory nobody listens on; the channel after."""
    settings.ACME_DIRECTORY_URL = f"https://127.0.0.1:{port_free()}/directory"
    claim = services.channel_issuance_claim(channel_id=channel.pk)
    assert services.channel_certificate_issue(channel_id=channel.pk, claim=claim) is None
    channel.refresh_from_db()
    return channel


UNREACHABLE = Finding(Check.ACME, Reason.ACME_UNREACHABLE, {"ca": "Pebble (test CA)"})


def test_a_ca_that_cannot_be_reached_is_a_typed_failure_in_plain_words(
    managed, preflight_passes, settings, monkeypatch
):
    # One retry of the refused connection instead of five: the outcome is the same, sooner.
    monkeypatch.setattr(protocol, "TRANSIENT_ATTEMPTS", 1)
    settings.ACME_ORDER_TIMEOUT = 30
    channel = unreachable_issue(managed, settings)

    assert preflight_passes == [channel.hostname]  # checked once, before the order
    assert channel.status == ChannelStatus.ISSUANCE_FAILING
    assert (channel.status_reason, channel.status_params) == (
        UNREACHABLE.reason.value,
        UNREACHABLE.params,
    )
    assert status_shown(channel).words == UNREACHABLE.words
    # The raw detail stays for the log and staff; the order says the plain words.
    assert "could not be reached" in channel.renewal_last_error
    order = channel.acme_orders.get()
    assert (order.status, order.error) == (AcmeOrder.Status.FAILED, UNREACHABLE.words)
    assert channel.renewal_failures == 1 and not channel.renewal_claim
    assert channel.renewal_next_attempt_at > timezone.now()


def test_a_ca_still_unreachable_when_the_order_runs_out_of_time_is_said_unreachable(
    managed, preflight_passes, settings
):
    """The retries of a refused connection (0.4, 0.8, 1.6 s...) outgrow a short deadline: the
    CA still could not be reached, it did not "ask to wait" nor take too long to issue."""
    settings.ACME_ORDER_TIMEOUT = 3
    channel = unreachable_issue(managed, settings)
    assert channel.status_reason == UNREACHABLE.reason.value, channel.renewal_last_error
    assert channel.acme_orders.get().error == UNREACHABLE.words
