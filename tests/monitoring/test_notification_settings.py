"""Notification settings of an institution: managers edit, viewers read, others see nothing."""

import pytest
from django.urls import reverse

from core.models import AuditEvent
from institutions.models import Institution

pytestmark = pytest.mark.django_db


def settings_url(institution) -> str:
    return reverse("institution_notifications", args=[institution.slug])


def test_a_manager_sets_addresses_and_a_webhook(client, alice, acme):
    client.force_login(alice)
    response = client.post(
        settings_url(acme),
        {
            "notification_emails": "Ops@Acme.test\n oncall@acme.test, ops@acme.test",
            "webhook_url": "https://chat.example.test/hooks/T01/secret",
        },
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.notification_email_list == ["ops@acme.test", "oncall@acme.test"]
    assert acme.webhook_url == "https://chat.example.test/hooks/T01/secret"
    event = AuditEvent.objects.get(action=AuditEvent.Action.INSTITUTION_NOTIFICATIONS)
    assert event.actor == alice
    assert event.details["webhook"] is True
    assert "secret" not in str(event.details)  # the webhook URL carries the chat tool's secret
    html = client.get(response["Location"]).content.decode()
    assert "Notification settings of Acme Tickets saved." in html
    assert "oncall@acme.test" in html


def test_a_bad_address_is_refused_with_the_reason(client, alice, acme):
    client.force_login(alice)
    response = client.post(
        settings_url(acme),
        {"notification_emails": "ops@acme.test\nnot-an-address, also@bad@", "webhook_url": ""},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Not a valid e-mail address: not-an-address, also@bad@." in html
    acme.refresh_from_db()
    assert acme.notification_emails == ""


def test_a_bad_webhook_url_is_refused(client, alice, acme):
    client.force_login(alice)
    response = client.post(
        settings_url(acme), {"notification_emails": "", "webhook_url": "ftp://x y"}
    )
    assert response.status_code == 200
    assert "Enter a valid URL." in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:6379/",
        "http://localhost/",
        # IPv6 forms of 127.0.0.1 that Python 3.11's is_global calls global (core.addresses)
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[2002:7f00:1::]/",
    ],
)
def test_a_webhook_to_an_internal_address_is_refused(client, alice, acme, url):
    client.force_login(alice)
    response = client.post(settings_url(acme), {"notification_emails": "", "webhook_url": url})
    assert response.status_code == 200
    assert "certmgr does not post to internal addresses" in response.content.decode()
    acme.refresh_from_db()
    assert acme.webhook_url == ""


def test_clearing_the_addresses_falls_back_to_the_managers(client, alice, acme):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    client.force_login(alice)
    client.post(settings_url(acme), {"notification_emails": "  ", "webhook_url": ""})
    acme.refresh_from_db()
    assert acme.notification_email_list == []
    assert "when empty, the institution&#x27;s managers get it" in (
        client.get(settings_url(acme)).content.decode()
    )


def test_a_viewer_sees_the_settings_read_only(client, bob, acme):
    acme.notification_emails = "ops@acme.test"
    acme.webhook_url = "https://chat.example.test/hooks/T01/secret"
    acme.save()
    client.force_login(bob)
    html = client.get(settings_url(acme)).content.decode()
    assert "ops@acme.test" in html
    assert "Configured" in html
    assert "secret" not in html
    assert "<form" not in html.split("<main", 1)[1]


def test_a_viewer_cannot_change_them(client, bob, acme):
    client.force_login(bob)
    response = client.post(
        settings_url(acme), {"notification_emails": "bob@acme.test", "webhook_url": ""}
    )
    assert response.status_code == 403
    acme.refresh_from_db()
    assert acme.notification_emails == ""


def test_another_institution_is_not_found(client, charlie, acme):
    client.force_login(charlie)
    assert client.get(settings_url(acme)).status_code == 404
    response = client.post(
        settings_url(acme), {"notification_emails": "charlie@opera.test", "webhook_url": ""}
    )
    assert response.status_code == 404
    assert Institution.objects.get(pk=acme.pk).notification_emails == ""


def test_staff_may_edit_any_institution(client, sam, opera):
    client.force_login(sam)
    client.post(settings_url(opera), {"notification_emails": "it@opera.test", "webhook_url": ""})
    opera.refresh_from_db()
    assert opera.notification_email_list == ["it@opera.test"]


def test_the_list_shows_the_users_institutions_and_the_nav_links_it(
    client, bob, charlie, acme, opera
):
    client.force_login(bob)
    html = client.get(reverse("institution_list")).content.decode()
    assert 'href="/institutions/"' in html
    assert "Acme Tickets" in html and "View notification settings" in html
    assert "Opera House" not in html
    client.force_login(charlie)
    html = client.get(reverse("institution_list")).content.decode()
    assert "Opera House" in html and "Edit notification settings" in html
    assert "Acme Tickets" not in html


def test_it_needs_a_login(client, acme):
    response = client.get(settings_url(acme))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
