"""The history page: every audit event of the user's institutions, in plain words, filtered
and paginated; never another institution's."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from core.audit import audit_record
from core.models import AuditEvent
from monitoring.services import institution_notifications_update
from saleschannels import services as channel_services

pytestmark = pytest.mark.django_db

HISTORY = reverse("history")


def main_of(response) -> str:
    assert response.status_code == 200
    return response.content.decode().split("<main", 1)[1]


def rows_of(html: str) -> list[str]:
    """The table's rows, as text between <tr> tags, header left out."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return [row for row in body.split("<tr>")[1:]]


@pytest.fixture
def acme_story(alice, acme, make_certificate):
    """Alice uploads a certificate, creates a channel, then changes the settings."""
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        certificate = make_certificate(acme, name="Acme box office", actor=alice)
    with time_machine.travel(at.replace(day=5), tick=False):
        channel = channel_services.channel_create(
            institution=acme, name="Box office", hostname="tickets.acme.test", actor=alice
        )
    with time_machine.travel(at.replace(day=9), tick=False):
        institution_notifications_update(
            institution=acme, notification_emails="ops@acme.test", webhook_url="", actor=alice
        )
    return {"certificate": certificate, "channel": channel}


def test_a_viewer_reads_every_event_newest_first_in_plain_words(client, bob, acme_story):
    client.force_login(bob)
    html = main_of(client.get(HISTORY))
    settings_row, channel_row, certificate_row = rows_of(html)
    assert "2026-11-09 09:30" in settings_row
    assert "Notification settings changed: digests to 1 address, no webhook" in settings_row
    assert "alice" in settings_row
    assert f'href="{reverse("institution_notifications", args=["acme-tickets"])}"' in settings_row
    assert "Sales channel created for tickets.acme.test, SSL: No SSL" in channel_row
    channel = acme_story["channel"]
    assert f'href="{channel.get_absolute_url()}">Box office (tickets.acme.test)</a>' in channel_row
    certificate = acme_story["certificate"]
    assert f"Certificate uploaded, expires {certificate.expires_at:%Y-%m-%d}" in certificate_row
    assert f'href="{certificate.get_absolute_url()}">Acme box office</a>' in certificate_row
    assert "Page 1 of 1 · 3 events" in html


def test_the_navigation_links_it(client, bob, acme):
    client.force_login(bob)
    assert f'<a href="{HISTORY}">History</a>' in client.get(reverse("home")).content.decode()


def test_a_deleted_object_is_named_without_a_link(client, alice, acme_story):
    channel = acme_story["channel"]
    url = channel.get_absolute_url()
    channel_services.channel_delete(channel=channel, actor=alice)
    client.force_login(alice)
    [deleted, *_] = rows_of(main_of(client.get(HISTORY)))
    assert "Sales channel tickets.acme.test deleted" in deleted
    assert 'Box office (tickets.acme.test) <span class="help">(no longer exists)</span>' in deleted
    assert url not in main_of(client.get(HISTORY))


def test_what_the_platform_did_itself_reads_as_certmgr(client, bob, acme):
    channel = channel_services.channel_create(
        institution=acme, name="Season", hostname="season.acme.test", actor=None
    )
    channel_services.channel_hostname_verified_mark(channel=channel, method="txt", actor=None)
    client.force_login(bob)
    verified, created = rows_of(main_of(client.get(HISTORY)))
    assert "certmgr (automatic)" in verified
    assert "Hostname ownership verified (txt record)" in verified


def test_a_test_message_reads_as_its_outcome(client, bob, acme):
    audit_record(
        institution=acme,
        actor=None,
        action=AuditEvent.Action.INSTITUTION_TEST_WEBHOOK,
        target=acme,
        details={
            "delivered": False,
            "outcome": "Test webhook to https://chat.test/… not delivered",
        },
    )
    client.force_login(bob)
    [row] = rows_of(main_of(client.get(HISTORY)))
    assert "Test webhook to https://chat.test/… not delivered" in row
    assert "Institution settings: " in row


def test_another_institutions_events_never_show(client, bob, charlie, opera, acme_story):
    opera_channel = channel_services.channel_create(
        institution=opera, name="Opera gala", hostname="gala.opera.test", actor=charlie
    )
    client.force_login(bob)
    html = main_of(client.get(HISTORY))
    assert "gala" not in html and "charlie" not in html and "Opera" not in html
    # Nor when asked for by its object, its institution or its actor.
    object_query = {"type": "saleschannel", "object": opera_channel.pk}
    assert client.get(HISTORY, object_query).status_code == 404
    html = main_of(client.get(HISTORY, {"institution": "opera-house"}))
    assert "Not one of the choices offered. This filter is not applied." in html
    assert "gala" not in html and "Opera" not in html
    html = main_of(client.get(HISTORY, {"actor": charlie.pk}))
    assert "Not one of the choices offered. This filter is not applied." in html
    assert "gala" not in html
    # Charlie, for his part, sees only Opera's.
    client.force_login(charlie)
    html = main_of(client.get(HISTORY))
    assert "Opera gala (gala.opera.test)" in html
    assert "tickets.acme.test" not in html and "Acme" not in html
    channel = acme_story["channel"]
    assert client.get(HISTORY, {"type": "saleschannel", "object": channel.pk}).status_code == 404


def test_one_objects_history(client, alice, acme_story):
    channel = acme_story["channel"]
    channel_services.channel_update(
        channel=channel, name="Box office", hostname="shop.acme.test", actor=alice
    )
    client.force_login(alice)
    html = main_of(client.get(HISTORY, {"type": "saleschannel", "object": channel.pk}))
    moved, created = rows_of(html)
    assert "Sales channel moved from tickets.acme.test to shop.acme.test" in moved
    assert "Sales channel created for tickets.acme.test" in created
    assert client.get(HISTORY, {"type": "saleschannel", "object": 999999999}).status_code == 404
    html = main_of(client.get(HISTORY, {"object": channel.pk}))
    assert "An object number needs its type. This filter is not applied." in html


def test_filters_by_type_name_actor_and_action(client, alice, sam, acme, acme_story):
    channel_services.channel_create(
        institution=acme, name="Season", hostname="season.acme.test", actor=sam
    )
    client.force_login(alice)
    by_type = rows_of(main_of(client.get(HISTORY, {"type": "certificate"})))
    assert len(by_type) == 1 and "Acme box office" in by_type[0]
    by_name = rows_of(main_of(client.get(HISTORY, {"q": "SEASON"})))
    assert len(by_name) == 1 and "season.acme.test" in by_name[0]
    by_actor = rows_of(main_of(client.get(HISTORY, {"actor": sam.pk})))
    assert len(by_actor) == 1 and "season.acme.test" in by_actor[0]
    assert len(rows_of(main_of(client.get(HISTORY, {"actor": alice.pk})))) == 3
    assert rows_of(main_of(client.get(HISTORY, {"actor": "platform"}))) == []
    by_action = rows_of(
        main_of(client.get(HISTORY, {"action": AuditEvent.Action.INSTITUTION_NOTIFICATIONS}))
    )
    assert len(by_action) == 1 and "Notification settings changed" in by_action[0]
    assert "No event matches." in main_of(client.get(HISTORY, {"q": "nothing like it"}))


def test_filters_by_date_range_both_days_included(client, bob, acme_story):
    client.force_login(bob)
    rows = rows_of(main_of(client.get(HISTORY, {"since": "2026-11-05", "until": "2026-11-09"})))
    assert len(rows) == 2
    assert "Notification settings changed" in rows[0] and "Sales channel created" in rows[1]
    rows = rows_of(main_of(client.get(HISTORY, {"until": "2026-11-04"})))
    assert len(rows) == 1 and "Certificate uploaded" in rows[0]


def test_a_bad_date_is_said_on_its_filter_and_not_applied(client, bob, acme_story):
    client.force_login(bob)
    html = main_of(client.get(HISTORY, {"since": "2026-13-45", "until": "2026-11-04"}))
    assert "“2026-13-45” is not a date: write it as year-month-day, e.g. 2030-06-30." in html
    assert 'aria-describedby="id_since_errors" aria-invalid="true"' in html
    assert 'id="id_since_errors"' in html
    assert len(rows_of(html)) == 1  # the other date still applies


def test_pages_of_fifty_keep_the_filters(client, bob, acme):
    for number in range(120):
        audit_record(
            institution=acme,
            actor=None,
            action=AuditEvent.Action.INSTITUTION_TEST_EMAIL,
            target=acme,
            details={"outcome": f"Test number {number}"},
        )
    client.force_login(bob)
    html = main_of(client.get(HISTORY, {"type": "institution"}))
    rows = rows_of(html)
    assert len(rows) == 50 and "Test number 119" in rows[0]
    assert "Page 1 of 3 · 120 events" in html
    assert 'href="?type=institution&amp;page=2" rel="next"' in html
    last = rows_of(main_of(client.get(HISTORY, {"type": "institution", "page": 3})))
    assert len(last) == 20 and "Test number 0" in last[-1]


def test_staff_see_every_institution_named(client, sam, alice, charlie, acme, opera):
    channel_services.channel_create(
        institution=acme, name="Box office", hostname="tickets.acme.test", actor=alice
    )
    channel_services.channel_create(
        institution=opera, name="Gala", hostname="gala.opera.test", actor=charlie
    )
    client.force_login(sam)
    opera_row, acme_row = rows_of(main_of(client.get(HISTORY)))
    assert "Opera House" in opera_row and "Acme Tickets" in acme_row
    only_opera = rows_of(main_of(client.get(HISTORY, {"institution": "opera-house"})))
    assert len(only_opera) == 1 and "gala.opera.test" in only_opera[0]


def test_it_needs_a_login(client):
    response = client.get(HISTORY)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
