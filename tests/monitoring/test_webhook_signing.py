"""Signed webhooks (README, "Expiry monitoring": Signed webhooks): every message (digest,
status event, test) carries Standard Webhooks signature headers made with the institution's
own secret, received by a real HTTP server and verified with the specification's reference
library (standardwebhooks) exactly as a receiver would. A manager reads the secret on the
notification settings page and replaces it; the replaced secret signs beside the new one for
ROTATION_OVERLAP."""

import html
import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from core.models import AuditEvent
from institutions.models import Institution
from institutions.signing_secrets import ROTATION_OVERLAP
from monitoring import services, webhooks
from monitoring.delivery import expiry_check
from monitoring.tasks import channel_status_event
from saleschannels.models import SalesChannel
from tests.monitoring.webhook_server import WebhookServer
from tests.support import page_after_redirect

pytestmark = pytest.mark.django_db

SECRET = re.compile(r'<code id="signing-secret">(whsec_[A-Za-z0-9+/=]+)</code>')


@pytest.fixture(autouse=True)
def _settings(settings, monkeypatch):
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = True  # the test's server listens on 127.0.0.1
    monkeypatch.setattr(webhooks, "WEBHOOK_BACKOFF", (0.01, 0.01))


def settings_url(institution) -> str:
    return reverse("institution_notifications", args=[institution.slug])


def rotate_url(institution) -> str:
    return reverse("institution_webhook_secret_rotate", args=[institution.slug])


def secret_shown(client, institution) -> str:
    return SECRET.search(client.get(settings_url(institution)).content.decode()).group(1)


def verified(secret: str, hook: WebhookServer, index: int = -1) -> dict:
    """The message as a receiver reads it after checking its signature with `secret`."""
    _, headers = hook.requests[index]
    return Webhook(secret).verify(hook.raw_bodies[index], dict(headers.items()))


def test_each_institution_has_a_secret_of_its_own_encrypted_at_rest(acme, opera):
    secrets = {acme.webhook_signing_secret, opera.webhook_signing_secret}

    assert len(secrets) == 2
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(secret) == len("whsec_") + 44  # base64 of 32 bytes
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM institutions_institution")
        stored = repr(cursor.fetchall())
    assert not [secret for secret in secrets if secret in stored or secret[6:] in stored]


def test_the_test_webhook_is_signed_with_the_secret_the_page_shows(as_alice, acme):
    secret = secret_shown(as_alice, acme)
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        as_alice.post(reverse("institution_notification_test_webhook", args=[acme.slug]))

    message = verified(secret, hook)
    assert message["event"] == "notification.test"
    _, headers = hook.requests[0]
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert headers["webhook-signature"].startswith("v1,")


def test_a_changed_body_or_another_secret_fails_verification(as_alice, acme, opera):
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        as_alice.post(reverse("institution_notification_test_webhook", args=[acme.slug]))
    _, headers = hook.requests[0]
    tampered = hook.raw_bodies[0].replace(b"notification.test", b"notification.tost")

    with pytest.raises(WebhookVerificationError):
        Webhook(acme.webhook_signing_secret).verify(tampered, dict(headers.items()))
    with pytest.raises(WebhookVerificationError):
        verified(opera.webhook_signing_secret, hook)


def test_the_digest_and_the_status_event_are_signed(acme, make_certificate, shop_channel):
    make_certificate(acme, days_left=5)
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        report = expiry_check()
        channel_status_event(acme.pk, {"event": "channel.status_changed", "channel": {"id": 1}})

    assert report.digests[0].webhook == "delivered"
    assert len(hook.requests) == 2
    secret = Institution.objects.get(pk=acme.pk).webhook_signing_secret
    assert verified(secret, hook, 0)["findings"]
    assert verified(secret, hook, 1)["event"] == "channel.status_changed"
    assert hook.requests[0][1]["webhook-id"] != hook.requests[1][1]["webhook-id"]


def test_retries_of_one_message_keep_its_id_and_each_is_signed(acme):
    with WebhookServer(statuses=[503, 503, 200]) as hook:
        acme.webhook_url = hook.url
        acme.save()
        assert channel_status_event(acme.pk, {"event": "channel.status_changed"}) == "delivered"

    assert len(hook.requests) == 3
    assert len({headers["webhook-id"] for _, headers in hook.requests}) == 1
    for index in range(3):
        assert verified(acme.webhook_signing_secret, hook, index)["event"]


def test_a_new_secret_signs_beside_the_previous_one_for_the_overlap_then_alone(
    as_alice, alice, acme
):
    before = secret_shown(as_alice, acme)
    hours = int(ROTATION_OVERLAP.total_seconds() // 3600)
    with WebhookServer() as hook, time_machine.travel(timezone.now(), tick=False) as traveller:
        Institution.objects.filter(pk=acme.pk).update(webhook_url=hook.url)
        page = page_after_redirect(as_alice, as_alice.post(rotate_url(acme)), settings_url(acme))
        after = SECRET.search(page).group(1)
        channel_status_event(acme.pk, {"event": "during the overlap"})
        # During the overlap, a receiver with either secret accepts the message.
        assert verified(before, hook, 0)["event"] == "during the overlap"
        assert verified(after, hook, 0)["event"] == "during the overlap"
        assert len(hook.requests[0][1]["webhook-signature"].split(" ")) == 2

        traveller.shift(ROTATION_OVERLAP + timedelta(seconds=1))
        channel_status_event(acme.pk, {"event": "after it"})
        # After it, only the new one signs.
        assert hook.requests[1][1]["webhook-signature"].count("v1,") == 1
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            verified(before, hook, 1)
        assert verified(after, hook, 1)["event"] == "after it"
        later_page = as_alice.get(settings_url(acme)).content.decode()

    assert after != before
    assert (
        f"New signing secret made. For the next {hours} hours every webhook message is signed"
        " with both the new and the previous secret" in html.unescape(page)
    )
    assert "The previous secret still signs too, beside this one, until" in page
    assert "The previous secret still signs too" not in later_page
    event = AuditEvent.objects.get(action=AuditEvent.Action.INSTITUTION_WEBHOOK_SECRET)
    assert (event.institution, event.actor) == (acme, alice)
    assert before not in json.dumps(event.details) and after not in json.dumps(event.details)


def test_saving_the_notification_settings_keeps_a_new_secret(as_alice, acme):
    """The settings form writes its own fields only: a stale copy of the institution (the
    form was opened before the secret was replaced) does not bring the old secret back."""
    form_opened = Institution.objects.get(pk=acme.pk)
    as_alice.post(rotate_url(acme))
    new = Institution.objects.get(pk=acme.pk).webhook_signing_secret
    services.institution_notifications_update(
        institution=form_opened,
        notification_emails="ops@acme.test",
        webhook_url="https://hooks.acme.test/certmgr",
        actor=None,
    )

    assert Institution.objects.get(pk=acme.pk).webhook_signing_secret == new


def test_a_viewer_sees_no_secret_and_cannot_replace_it(client, bob, acme):
    client.force_login(bob)
    page = client.get(settings_url(acme)).content.decode()

    assert acme.webhook_signing_secret not in page
    assert "whsec_" not in page
    assert client.post(rotate_url(acme)).status_code == 403
    assert Institution.objects.get(pk=acme.pk).webhook_signing_secret == (
        acme.webhook_signing_secret
    )


def test_another_institutions_secret_is_not_found(client, charlie, acme):
    client.force_login(charlie)

    assert client.post(rotate_url(acme)).status_code == 404
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.INSTITUTION_WEBHOOK_SECRET)


def test_the_settings_page_is_never_cached(as_alice, acme):
    assert "no-store" in as_alice.get(settings_url(acme))["Cache-Control"]


@pytest.fixture
def shop_channel(acme):
    """A channel, so that the status event has something to name."""
    return SalesChannel.objects.create(institution=acme, name="Shop", hostname="shop.acme.test")
