"""Through a real browser: a manager presses Send test e-mail on the notification settings
page and reads what came of it there; the test is then in the history."""

import pytest
from django.core import mail
from django.urls import reverse

from tests.browser.conftest import log_in
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_sends_a_test_email_and_reads_the_outcome(browser_page, alice, acme):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    page = browser_page
    log_in(
        page,
        "alice",
        PASSWORD,
        next_path=reverse("institution_notifications", args=["acme-tickets"]),
    )
    page.get_by_role("button", name="Send test e-mail").click()
    page.wait_for_load_state("load")
    message = page.locator("ul.messages li.success")
    assert message.inner_text() == "The mail server accepted the test e-mail for ops@acme.test."
    assert [sent.to for sent in mail.outbox] == [["ops@acme.test"]]
    page.get_by_role("link", name="History").click()
    page.wait_for_load_state("load")
    first_row = page.locator("table.history tbody tr").first.inner_text()
    assert "The mail server accepted the test e-mail for ops@acme.test." in first_row
    assert "alice" in first_row
