"""Webhook events for channel status changes: status_set() -> channel_status_changed (on
commit) -> the monitoring receiver -> the channel_status_event task -> a JSON POST, received
by a real HTTP server in a thread. Celery runs the task in the test's process
(task_always_eager): the queueing is Celery's own."""

import json
import logging
from datetime import datetime

import pytest

from monitoring import status_events, tasks, webhooks
from saleschannels.models import SalesChannel
from saleschannels.status import status_set
from tests.monitoring.webhook_server import WebhookServer

pytestmark = pytest.mark.django_db

RAW_ERROR = "urn:ietf:params:acme:error:connection: 203.0.113.9:80: Connection refused (raw)"
CONNECTION_WORDS = "The CA (Pebble (test CA)) could not connect to the hostname to validate it."
CONNECTION_ADVICE = "Check that port 80 of the hostname reaches the platform's edge."


@pytest.fixture(autouse=True)
def _settings(settings, monkeypatch):
    settings.CERTMGR_BASE_URL = "https://certmgr.example.test"
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = True  # the test's server listens on 127.0.0.1
    monkeypatch.setattr(webhooks, "WEBHOOK_BACKOFF", (0.01, 0.01))


@pytest.fixture
def eager():
    """Celery runs queued tasks at once, in this process."""
    from certmgr.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def shop(acme):
    return SalesChannel.objects.create(
        institution=acme,
        name="Main shop",
        hostname="shop.acme.test",
        ssl_mode=SalesChannel.SslMode.MANAGED,
        status="active",
        renewal_failures=1,
        renewal_last_error=RAW_ERROR,
    )


def renewal_fails(channel, django_capture_on_commit_callbacks) -> bool:
    """What acme_client records of a failed renewal, committed (the signal goes on commit)."""
    with django_capture_on_commit_callbacks(execute=True):
        return status_set(
            channel,
            "renewal_failing",
            reason="acme_connection",
            params={"ca": "Pebble (test CA)"},
        )


def test_a_status_change_posts_an_event_with_the_status_in_words(
    acme, shop, eager, django_capture_on_commit_callbacks
):
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        assert renewal_fails(shop, django_capture_on_commit_callbacks)
    [payload] = hook.bodies
    at = datetime.fromisoformat(payload.pop("at"))
    assert at.tzinfo is not None
    url = f"https://certmgr.example.test/saleschannels/{shop.pk}/"
    assert payload == {
        "event": "channel.status_changed",
        "channel": {"id": shop.pk, "name": "Main shop", "hostname": "shop.acme.test", "url": url},
        "old": {"status": "active", "label": "Active"},
        "new": {
            "status": "renewal_failing",
            "label": "Renewal failing",
            "reason": "acme_connection",
            "words": CONNECTION_WORDS,
            "advice": CONNECTION_ADVICE,
        },
        "institution": {"name": "Acme Tickets", "slug": "acme-tickets"},
        "text": (
            f"certmgr: Main shop (shop.acme.test): Active → Renewal failing. "
            f"{CONNECTION_WORDS} {CONNECTION_ADVICE} {url}"
        ),
    }


def test_the_event_never_carries_the_raw_error(
    acme, shop, eager, django_capture_on_commit_callbacks
):
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        renewal_fails(shop, django_capture_on_commit_callbacks)
    posted = json.dumps(hook.bodies)
    assert SalesChannel.objects.get().renewal_last_error == RAW_ERROR
    assert "Connection refused" not in posted
    assert "203.0.113.9" not in posted


def test_only_a_change_is_an_event(acme, shop, eager, django_capture_on_commit_callbacks):
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        renewal_fails(shop, django_capture_on_commit_callbacks)
        assert not renewal_fails(shop, django_capture_on_commit_callbacks)  # the same status
        with django_capture_on_commit_callbacks(execute=True):
            status_set(shop, "active")
    assert [(body["old"]["status"], body["new"]["status"]) for body in hook.bodies] == [
        ("active", "renewal_failing"),
        ("renewal_failing", "active"),
    ]
    assert hook.bodies[1]["new"]["words"] == (
        "The platform's certificate is served and renews automatically."
    )
    assert hook.bodies[1]["new"]["advice"] == ""


def test_nothing_is_queued_for_an_institution_without_webhook(
    shop, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(tasks.channel_status_event, "delay", lambda *args: queued.append(args))
    assert renewal_fails(shop, django_capture_on_commit_callbacks)
    assert queued == []


def test_the_queued_event_is_plain_json(
    acme, shop, monkeypatch, django_capture_on_commit_callbacks
):
    """What Celery's JSON serializer carries to the worker, unchanged."""
    acme.webhook_url = "https://chat.example.test/hook"
    acme.save()
    queued = []
    monkeypatch.setattr(tasks.channel_status_event, "delay", lambda *args: queued.append(args))
    renewal_fails(shop, django_capture_on_commit_callbacks)
    [(institution_id, payload)] = queued
    assert institution_id == acme.pk
    assert json.loads(json.dumps(payload)) == payload


def test_a_broker_that_cannot_take_the_event_fails_no_status_change(
    acme, shop, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    acme.webhook_url = "https://chat.example.test/hook"
    acme.save()

    def broker_down(*args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.channel_status_event, "delay", broker_down)
    with caplog.at_level(logging.ERROR, logger="monitoring.status_events"):
        assert renewal_fails(shop, django_capture_on_commit_callbacks)
    assert SalesChannel.objects.get().status == "renewal_failing"
    assert "could not queue the status event" in caplog.text


def test_a_failed_delivery_is_logged_once_and_not_retried_by_celery(
    acme, shop, eager, caplog, django_capture_on_commit_callbacks
):
    with (
        WebhookServer(statuses=[500]) as hook,
        caplog.at_level(logging.WARNING, logger="monitoring.tasks"),
    ):
        acme.webhook_url = hook.url
        acme.save()
        renewal_fails(shop, django_capture_on_commit_callbacks)
    assert len(hook.bodies) == webhooks.WEBHOOK_ATTEMPTS  # webhook_post's tries, no more
    [record] = [r for r in caplog.records if r.name == "monitoring.tasks"]
    assert record.levelno == logging.WARNING
    assert record.error == "HTTP 500 after 3 attempts"
    assert "secret" not in caplog.text  # the webhook URL carries the chat tool's secret


def test_the_task_skips_an_institution_whose_webhook_was_removed(acme, shop):
    payload = status_events.status_event_payload(
        channel_id=shop.pk,
        name=shop.name,
        hostname=shop.hostname,
        old="active",
        new="renewal_due",
        reason="",
        params={},
        at=datetime.now().astimezone(),
    )
    assert payload["new"]["words"] == "Renewal is due: the platform is renewing the certificate."
    assert tasks.channel_status_event(acme.pk, payload) == ""


def test_a_status_no_longer_defined_is_named_as_stored():
    assert status_events.status_label("retired_status") == "retired_status"
    assert status_events.status_label("waiting_caa") == "Waiting for CAA"
