"""Test messages from the notification settings page (README, "Expiry monitoring": Send a
test): a manager has the platform send a clearly marked test e-mail or webhook through the
real delivery path (the same e-mail backend and timeout, the same webhook client with its
address checks and timeouts) and reads what came of it in plain words, never an exception's
text. Each test is recorded in the audit trail with its outcome.

At most NOTIFICATION_TEST_LIMIT tests of each kind per institution in any window of
NOTIFICATION_TEST_WINDOW, so that the button cannot be used to flood a mailbox or a third
party's server. The ledger is a table (NotificationTest), taken in turns on the institution's
row, so that the limit holds across any number of web processes and concurrent requests.
"""

from __future__ import annotations

import logging
import math
import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from certificates.expiry import plural
from core.audit import audit
from core.models import AuditEvent
from institutions.models import Institution

from . import webhooks
from .delivery import institution_recipients
from .digests import absolute_url, webhook_payload
from .models import NotificationTest
from .webhooks import Reason, WebhookResult, webhook_send

logger = logging.getLogger(__name__)

NOTIFICATION_TEST_LIMIT = 3
NOTIFICATION_TEST_WINDOW = timedelta(minutes=1)
# A test gets one try (a digest gets webhooks.WEBHOOK_ATTEMPTS): the page waits for it, and
# three tries with their pauses could outlast the web server's own timeout.
WEBHOOK_TEST_ATTEMPTS = 1


@dataclass(frozen=True)
class NotificationTestOutcome:
    """What a test came to: delivered or not, said in plain words."""

    delivered: bool
    words: str


class NotificationTestLimited(Exception):
    """Too many tests of this kind for the institution just now: try after `wait_seconds`."""

    def __init__(self, kind: str, wait_seconds: int):
        noun = "test e-mails" if kind == NotificationTest.Kind.EMAIL else "test webhooks"
        super().__init__(
            f"At most {NOTIFICATION_TEST_LIMIT} {noun} a minute per institution: try again in "
            f"{plural(wait_seconds, 'second')}."
        )
        self.wait_seconds = wait_seconds


def notification_test_email_send(
    *, institution: Institution, actor, now: datetime | None = None
) -> NotificationTestOutcome:
    """Send a test e-mail to where the institution's digests go (its notification addresses,
    else its managers'), as the digests are sent; NotificationTestLimited when over the
    limit."""
    recipients = institution_recipients(institution)
    if not recipients:
        return NotificationTestOutcome(
            False,
            "No test e-mail sent: there is no address to send it to. Save a notification "
            "address, or give a manager an e-mail address.",
        )
    _test_take(institution, NotificationTest.Kind.EMAIL, now or timezone.now())
    try:
        sent = _test_email(institution, recipients, actor).send()
    except Exception as error:  # said in plain words below; the details go to the log
        logger.warning("test e-mail of institution %s failed", institution.pk, exc_info=True)
        outcome = NotificationTestOutcome(False, "Test e-mail not sent: " + _email_words(error))
    else:
        outcome = (
            NotificationTestOutcome(
                True,
                "The mail server accepted the test e-mail for " + ", ".join(recipients) + ".",
            )
            if sent
            else NotificationTestOutcome(False, "Test e-mail not sent: the mail server took none.")
        )
    _test_audit(
        institution,
        actor,
        AuditEvent.Action.INSTITUTION_TEST_EMAIL,
        outcome,
        details={"recipients": recipients},
        event="notification_test_email",
        recipients=len(recipients),
    )
    return outcome


def notification_test_webhook_send(
    *, institution: Institution, actor, now: datetime | None = None
) -> NotificationTestOutcome:
    """POST a test event to the institution's webhook with the digests' client (one try);
    NotificationTestLimited when over the limit."""
    url = institution.webhook_url
    if not url:
        return NotificationTestOutcome(
            False, "No test webhook sent: no webhook URL is saved for this institution."
        )
    _test_take(institution, NotificationTest.Kind.WEBHOOK, now or timezone.now())
    payload = webhook_payload(institution, [])
    payload.update(
        event="notification.test",
        test=True,
        text=(
            f"certmgr: test message for {institution.name}, sent by "
            f"{_actor_name(actor)} from the notification settings. Nothing needs attention."
        ),
    )
    result = webhook_send(
        url,
        payload,
        secrets=institution.webhook_signing_secrets(timezone.now()),
        attempts=WEBHOOK_TEST_ATTEMPTS,
    )
    shown = shown_url(url)
    outcome = NotificationTestOutcome(result.delivered, _webhook_words(result, url, shown))
    _test_audit(
        institution,
        actor,
        AuditEvent.Action.INSTITUTION_TEST_WEBHOOK,
        outcome,
        # Never the URL itself: chat tools put their secret in its path.
        details={"url": shown, "status": result.status, "reason": result.reason},
        event="notification_test_webhook",
        status=result.status,
        reason=result.reason,
    )
    return outcome


def shown_url(url: str) -> str:
    """What may be shown of a webhook URL: its scheme, host and port; the path (where chat
    tools keep their secret) and any credentials become "…"."""
    parsed = urlsplit(url)
    origin = f"{parsed.scheme}://{parsed.netloc.rpartition('@')[2]}"
    return origin + ("/…" if parsed.path.strip("/") or parsed.query else "/")


def _test_take(institution: Institution, kind: str, now: datetime) -> None:
    """Take one test of `kind` from the institution's allowance, or raise
    NotificationTestLimited. Takers queue on the institution's row (PostgreSQL; SQLite runs
    one write transaction at a time), so concurrent requests cannot all see room."""
    since = now - NOTIFICATION_TEST_WINDOW
    with transaction.atomic():
        Institution.objects.select_for_update().filter(pk=institution.pk).first()
        NotificationTest.objects.filter(institution=institution, requested_at__lte=since).delete()
        recent = list(
            NotificationTest.objects.filter(institution=institution, kind=kind)
            .order_by("-requested_at")
            .values_list("requested_at", flat=True)[:NOTIFICATION_TEST_LIMIT]
        )
        if len(recent) >= NOTIFICATION_TEST_LIMIT:
            frees_at = recent[-1] + NOTIFICATION_TEST_WINDOW
            wait = max(1, math.ceil((frees_at - now).total_seconds()))
            raise NotificationTestLimited(kind, wait)
        NotificationTest.objects.create(institution=institution, kind=kind, requested_at=now)


def _test_audit(
    institution, actor, action: str, outcome: NotificationTestOutcome, *, details, event, **fields
) -> None:
    with transaction.atomic():
        audit(
            logger,
            event,
            "institution {institution_id}: test {kind} {result}",
            institution=institution,
            actor=actor,
            action=action,
            target=institution,
            details={"delivered": outcome.delivered, "outcome": outcome.words, **details},
            shown={
                "kind": "e-mail" if event.endswith("email") else "webhook",
                "result": "delivered" if outcome.delivered else "failed",
            },
            institution_id=institution.pk,
            delivered=outcome.delivered,
            **fields,
        )


def _actor_name(actor) -> str:
    return actor.get_username() if actor is not None and actor.is_authenticated else "certmgr"


def _test_email(institution: Institution, recipients: list[str], actor) -> EmailMultiAlternatives:
    context = {
        "institution": institution,
        "actor": _actor_name(actor),
        "settings_url": absolute_url(reverse("institution_notifications", args=[institution.slug])),
    }
    message = EmailMultiAlternatives(
        subject=f"[certmgr] {institution.name}: test message (nothing needs attention)",
        body=render_to_string("emails/test.txt", context),
        to=recipients,
    )
    message.attach_alternative(render_to_string("emails/test.html", context), "text/html")
    return message


def _email_words(error: Exception) -> str:
    """Why an e-mail was not sent, in plain words (never the exception's own text: an SMTP
    server's answer may say anything)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "the mail server refused the address(es) " + ", ".join(error.recipients) + "."
    if isinstance(error, smtplib.SMTPSenderRefused):
        return "the mail server refused certmgr's sender address (DEFAULT_FROM_EMAIL)."
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return "the mail server refused certmgr's user name or password (EMAIL_URL)."
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "the mail server closed the connection."
    if isinstance(error, smtplib.SMTPResponseException):
        return f"the mail server refused the message (SMTP {error.smtp_code})."
    if isinstance(error, ConnectionRefusedError):
        return "the mail server refused the connection."
    if isinstance(error, TimeoutError):
        return f"the mail server did not answer within {settings.EMAIL_TIMEOUT:g} s."
    if isinstance(error, socket.gaierror):
        return "the mail server's name does not resolve."
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return "the TLS connection to the mail server failed."
    if isinstance(error, OSError):
        return "could not connect to the mail server."
    return "the e-mail could not be built or handed over (the log has the details)."


def _webhook_words(result: WebhookResult, url: str, shown: str) -> str:
    host = urlsplit(url).hostname or shown
    if result.delivered:
        return f"Test webhook delivered to {shown}: it answered HTTP {result.status}."
    if result.reason == Reason.REFUSED_ADDRESS:
        refusal = result.error.removesuffix(", refused")
        return f"No test webhook sent: certmgr refused the address: {refusal}."
    port = urlsplit(url).port or (443 if url.startswith("https:") else 80)
    words = {
        Reason.UNRESOLVED: f"{host} does not resolve to any address.",
        Reason.CONNECTION_REFUSED: f"{host} refused the connection on port {port}.",
        Reason.NO_CONNECTION: f"could not connect to {host} on port {port}.",
        Reason.TLS: (
            f"the TLS connection to {host} failed (its certificate is not valid for {host}, "
            "or not from a trusted authority)."
        ),
        Reason.TIMEOUT: f"{host} did not answer within {webhooks.WEBHOOK_TIMEOUT:g} s.",
        Reason.STATUS: _status_words(host, result.status),
    }.get(result.reason, f"the request to {host} failed.")
    return f"Test webhook to {shown} not delivered: {words}"


def _status_words(host: str, status: int | None) -> str:
    if status is not None and 300 <= status < 400:
        return f"{host} answered HTTP {status}, a redirect, which certmgr does not follow."
    return f"{host} answered HTTP {status}, not a success (2xx)."
