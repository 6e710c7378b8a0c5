"""Send test webhook (notification settings page): a manager has a marked test event posted
to the saved webhook by the digests' client (address checks, timeouts) and reads the
outcome: delivered with the HTTP status, or why not, in plain words."""

import json
import socket

import pytest
from django.urls import reverse

from core.models import AuditEvent
from monitoring import webhooks
from tests.monitoring.webhook_server import WebhookServer
from tests.support import page_after_redirect

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_loopback(settings):
    """The test's webhook server listens on 127.0.0.1, an internal address."""
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = True


def webhook_test_url(institution) -> str:
    return reverse("institution_notification_test_webhook", args=[institution.slug])


def page_after(client, response) -> str:
    return page_after_redirect(
        client, response, reverse("institution_notifications", args=["acme-tickets"])
    )


def closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


def test_a_manager_sends_a_test_event_and_reads_the_status(as_alice, alice, acme, on_loopback):
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        html = page_after(as_alice, as_alice.post(webhook_test_url(acme)))
    port = hook.server.server_port
    assert f"Test webhook delivered to http://127.0.0.1:{port}/…: it answered HTTP 200." in html
    # The URL's path, where chat tools keep their secret, is in the form only, not in the message.
    assert "secret" not in html.split('<ul class="messages">')[1].split("</ul>")[0]
    [(path, headers)] = hook.requests
    assert path == "/hooks/T000/secret"
    # What the digests' client sends: the JSON type, its own name, the URL's host.
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "certmgr"
    assert headers["Host"] == f"127.0.0.1:{port}"
    [body] = hook.bodies
    assert body["event"] == "notification.test" and body["test"] is True
    assert body["text"] == (
        "certmgr: test message for Acme Tickets, sent by alice from the notification settings. "
        "Nothing needs attention."
    )
    assert body["institution"] == {"name": "Acme Tickets", "slug": "acme-tickets"}
    assert (body["count"], body["findings"]) == (0, [])
    event = AuditEvent.objects.get(action=AuditEvent.Action.INSTITUTION_TEST_WEBHOOK)
    assert (event.institution, event.actor) == (acme, alice)
    assert event.details["delivered"] is True and event.details["status"] == 200
    assert "secret" not in json.dumps(event.details)


def test_a_non_2xx_answer_is_said_with_its_code_after_one_try(as_alice, acme, on_loopback):
    with WebhookServer(statuses=[500]) as hook:
        acme.webhook_url = hook.url
        acme.save()
        html = page_after(as_alice, as_alice.post(webhook_test_url(acme)))
    assert "127.0.0.1 answered HTTP 500, not a success (2xx)." in html
    assert len(hook.bodies) == 1  # one try: the page waits for it
    event = AuditEvent.objects.get(action=AuditEvent.Action.INSTITUTION_TEST_WEBHOOK)
    assert (event.details["delivered"], event.details["status"]) == (False, 500)


def test_a_redirect_is_not_followed_and_says_so(as_alice, acme, on_loopback):
    with WebhookServer(statuses=[301]) as hook:
        acme.webhook_url = hook.url
        acme.save()
        html = page_after(as_alice, as_alice.post(webhook_test_url(acme)))
    assert "answered HTTP 301, a redirect, which certmgr does not follow." in html


def test_a_refused_connection_is_said_in_plain_words(as_alice, acme, on_loopback):
    port = closed_port()
    acme.webhook_url = f"http://127.0.0.1:{port}/hook"
    acme.save()
    html = page_after(as_alice, as_alice.post(webhook_test_url(acme)))
    assert (
        f"Test webhook to http://127.0.0.1:{port}/… not delivered: "
        f"127.0.0.1 refused the connection on port {port}."
    ) in html
    assert "Errno" not in html and "NewConnectionError" not in html


def test_a_server_that_never_answers_times_out(as_alice, acme, on_loopback, monkeypatch):
    monkeypatch.setattr(webhooks, "WEBHOOK_TIMEOUT", 0.5)
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        acme.webhook_url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        acme.save()
        html = page_after(as_alice, as_alice.post(webhook_test_url(acme)))
    assert "127.0.0.1 did not answer within 0.5 s." in html


def test_an_internal_address_is_refused_before_connecting(as_alice, acme, settings):
    settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE = False
    with WebhookServer() as hook:
        # Saved while private addresses were allowed (or by staff): refused when sent.
        acme.webhook_url = hook.url
        acme.save()
        html = page_after(as_alice, as_alice.post(webhook_test_url(acme)))
    assert (
        "No test webhook sent: certmgr refused the address: "
        "127.0.0.1 is an internal address (127.0.0.1)."
    ) in html
    assert hook.bodies == []
    event = AuditEvent.objects.get(action=AuditEvent.Action.INSTITUTION_TEST_WEBHOOK)
    assert event.details["reason"] == "refused_address"


def test_without_a_webhook_nothing_is_sent(as_alice, acme):
    html = page_after(as_alice, as_alice.post(webhook_test_url(acme)))
    assert "No test webhook sent: no webhook URL is saved for this institution." in html
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.INSTITUTION_TEST_WEBHOOK).exists()


def test_a_few_tests_a_minute_so_no_third_party_is_hammered(as_alice, acme, on_loopback):
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        for _ in range(5):
            response = as_alice.post(webhook_test_url(acme))
        html = page_after(as_alice, response)
    assert len(hook.bodies) == 3
    assert "At most 3 test webhooks a minute per institution: try again in" in html


@pytest.mark.parametrize(
    ("user", "status"),
    [("bob", 403), ("charlie", 404)],
    ids=["a viewer is refused", "another institution is not found"],
)
def test_only_its_managers_may_send_one(client, acme, on_loopback, request, user, status):
    with WebhookServer() as hook:
        acme.webhook_url = hook.url
        acme.save()
        client.force_login(request.getfixturevalue(user))
        assert client.post(webhook_test_url(acme)).status_code == status
    assert hook.bodies == []
