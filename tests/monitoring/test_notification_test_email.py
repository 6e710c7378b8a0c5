"""Send test e-mail (notification settings page): a manager has a marked test message sent
where the digests go, through the configured e-mail backend, and reads the outcome."""

import socket
import socketserver
import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from monitoring.notification_tests import NOTIFICATION_TEST_LIMIT
from tests.support import page_after_redirect

pytestmark = pytest.mark.django_db


def email_test_url(institution) -> str:
    return reverse("institution_notification_test_email", args=[institution.slug])


def page_after(client, response) -> str:
    return page_after_redirect(
        client, response, reverse("institution_notifications", args=["acme-tickets"])
    )


def test_a_manager_sends_a_test_email_to_the_notification_addresses(as_alice, alice, acme):
    acme.notification_emails = "ops@acme.test\noncall@acme.test"
    acme.save()
    html = page_after(as_alice, as_alice.post(email_test_url(acme)))
    assert "The mail server accepted the test e-mail for ops@acme.test, oncall@acme.test." in html
    [message] = mail.outbox
    assert message.to == ["ops@acme.test", "oncall@acme.test"]
    assert message.subject == "[certmgr] Acme Tickets: test message (nothing needs attention)"
    assert "This is a test message from certmgr for Acme Tickets, sent by alice" in message.body
    assert "<strong>This is a test message</strong>" in message.alternatives[0][0]
    event = AuditEvent.objects.get(action=AuditEvent.Action.INSTITUTION_TEST_EMAIL)
    assert (event.institution, event.actor) == (acme, alice)
    assert event.details["delivered"] is True
    assert event.details["recipients"] == ["ops@acme.test", "oncall@acme.test"]


def test_without_addresses_the_managers_get_it_as_they_get_the_digests(as_alice, alice, acme):
    alice.email = "alice@acme.test"
    alice.save()
    page_after(as_alice, as_alice.post(email_test_url(acme)))
    assert mail.outbox[0].to == ["alice@acme.test"]


def test_with_no_address_at_all_the_page_says_so_and_sends_nothing(as_alice, acme):
    html = page_after(as_alice, as_alice.post(email_test_url(acme)))
    assert "No test e-mail sent: there is no address to send it to." in html
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.INSTITUTION_TEST_EMAIL).exists()


def test_a_mail_server_refusing_the_connection_is_said_in_plain_words(as_alice, acme, settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    acme.notification_emails = "ops@acme.test"
    acme.save()
    html = page_after(as_alice, as_alice.post(email_test_url(acme)))
    assert "Test e-mail not sent: the mail server refused the connection." in html
    assert "Traceback" not in html and "Errno" not in html
    event = AuditEvent.objects.get(action=AuditEvent.Action.INSTITUTION_TEST_EMAIL)
    assert event.details["delivered"] is False
    assert (
        event.details["outcome"] == "Test e-mail not sent: the mail server refused the connection."
    )


class RecipientRefusingSmtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to refuse every recipient with 550."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 test.invalid ESMTP")
        for raw in self.rfile:
            command = raw.decode().strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.reply("250 test.invalid")
            elif command.startswith("MAIL FROM"):
                self.reply("250 OK")
            elif command.startswith("RCPT TO"):
                self.reply("550 5.1.1 no such mailbox; secret internal detail")
            elif command.startswith("QUIT"):
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


def test_a_mail_server_refusing_the_recipients_names_them_not_its_answer(as_alice, acme, settings):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), RecipientRefusingSmtp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.server_address[1]
        acme.notification_emails = "ops@acme.test"
        acme.save()
        html = page_after(as_alice, as_alice.post(email_test_url(acme)))
    finally:
        server.shutdown()
        server.server_close()
    assert "Test e-mail not sent: the mail server refused the address(es) ops@acme.test." in html
    assert "secret internal detail" not in html


def test_a_few_tests_a_minute_then_the_page_says_how_long_to_wait(as_alice, acme):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(NOTIFICATION_TEST_LIMIT):
            as_alice.post(email_test_url(acme))
        html = page_after(as_alice, as_alice.post(email_test_url(acme)))
    assert "At most 3 test e-mails a minute per institution: try again in 60 seconds." in html
    assert len(mail.outbox) == NOTIFICATION_TEST_LIMIT
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        html = page_after(as_alice, as_alice.post(email_test_url(acme)))
    assert "The mail server accepted the test e-mail" in html
    assert len(mail.outbox) == NOTIFICATION_TEST_LIMIT + 1


def test_the_limit_is_per_institution(client, alice, charlie, acme, opera):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    opera.notification_emails = "it@opera.test"
    opera.save()
    client.force_login(alice)
    for _ in range(NOTIFICATION_TEST_LIMIT + 1):
        client.post(email_test_url(acme))
    client.force_login(charlie)
    client.post(email_test_url(opera))
    assert [message.to for message in mail.outbox].count(["it@opera.test"]) == 1
    assert len(mail.outbox) == NOTIFICATION_TEST_LIMIT + 1


@pytest.mark.parametrize(
    ("user", "status"),
    [("bob", 403), ("charlie", 404)],
    ids=["a viewer is refused", "another institution is not found"],
)
def test_only_its_managers_may_send_one(client, acme, request, user, status):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    client.force_login(request.getfixturevalue(user))
    assert client.post(email_test_url(acme)).status_code == status
    assert mail.outbox == []


def test_the_viewer_page_has_no_test_buttons(client, bob, acme):
    client.force_login(bob)
    html = client.get(reverse("institution_notifications", args=[acme.slug])).content.decode()
    assert "Send test e-mail" not in html


def test_it_takes_a_post_with_a_csrf_token(alice, acme):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(email_test_url(acme)).status_code == 405
    assert client.post(email_test_url(acme)).status_code == 403
    assert mail.outbox == []
