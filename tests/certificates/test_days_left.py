"""The one rule of days left (certificates/expiry.py, README "Using it"), at its boundaries,
and its words on the list, the detail page, the sales channel page and the CSV export."""

import csv
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from certificates.expiry import days_left, expires_in_words, expiry_words
from saleschannels.models import SalesChannel

NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("until_expiry", "left", "words"),
    [
        (3 * DAY, 3, "3 days left"),
        (3 * DAY - SECOND, 3, "3 days left"),  # a part of a day counts as a day
        (2 * DAY + SECOND, 3, "3 days left"),
        (2 * DAY, 2, "2 days left"),
        (DAY, 1, "1 day left"),
        (SECOND, 1, "1 day left"),
        (timedelta(0), 0, "expires now"),
        (-SECOND, 0, "expired less than a day ago"),  # just expired
        (-DAY + SECOND, 0, "expired less than a day ago"),
        (-DAY, -1, "expired 1 day ago"),
        (-6 * DAY, -6, "expired 6 days ago"),
        (-6 * DAY - 23 * timedelta(hours=1), -6, "expired 6 days ago"),
    ],
)
def test_days_left_are_rounded_up_and_days_since_expiry_down(until_expiry, left, words):
    assert days_left(NOW + until_expiry, NOW) == left
    assert expiry_words(NOW + until_expiry, NOW) == words


def test_the_verb_form_says_within_a_day_in_the_last_24_hours():
    assert expires_in_words(NOW + 3 * DAY, NOW) == "expires in 3 days"
    assert expires_in_words(NOW + 3 * DAY - SECOND, NOW) == "expires in 3 days"
    assert expires_in_words(NOW + DAY, NOW) == "expires within a day"
    assert expires_in_words(NOW - 6 * DAY, NOW) == "expired 6 days ago"


def test_n_days_left_or_fewer_is_exactly_critical_for_n_critical_days(settings):
    """The rule agrees with the status rules: critical when it expires within 7 × 24 h."""
    from certificates.models import status_conditions

    critical = dict(status_conditions(NOW))["critical"]
    limit = NOW + timedelta(days=settings.CERTMGR_CRITICAL_DAYS)
    assert critical.children == [("expires_at__lte", limit)]
    assert days_left(limit, NOW) == settings.CERTMGR_CRITICAL_DAYS
    assert days_left(limit + SECOND, NOW) == settings.CERTMGR_CRITICAL_DAYS + 1


def test_a_certificate_made_to_expire_in_3_days_shows_3_everywhere(
    as_alice, acme, make_certificate
):
    certificate = make_certificate(acme, name="Soon", days_left=3)
    channel = SalesChannel.objects.create(
        institution=acme,
        name="Shop",
        hostname="shop.example.test",
        ssl_mode="uploaded",
        certificate=certificate,
        active_certificate=certificate,
    )
    with time_machine.travel(certificate.expires_at - 3 * DAY + timedelta(minutes=5)):
        listed = as_alice.get(reverse("certificate_list"))
        assert listed.context["rows"][0]["days_left"] == 3
        assert '<td data-label="Days left" class="num">3</td>' in listed.content.decode()
        assert "(3 days left)" in as_alice.get(certificate.get_absolute_url()).content.decode()
        assert "(3 days left)" in as_alice.get(channel.get_absolute_url()).content.decode()
        exported = as_alice.get(reverse("certificate_list_export"))
        header, row = csv.reader(b"".join(exported.streaming_content).decode().splitlines())
        assert row[header.index("Days left")] == "3"


def test_an_expired_certificate_says_how_long_ago_not_a_negative_count(
    as_alice, acme, make_certificate
):
    certificate = make_certificate(acme, name="Gone", days_left=-6.5)
    page = as_alice.get(certificate.get_absolute_url()).content.decode()
    assert "(expired 6 days ago)" in page
    assert "-6" not in page and "-7" not in page
    listed = as_alice.get(reverse("certificate_list")).content.decode()
    assert '<td data-label="Days left" class="num">expired 6 days ago</td>' in listed
    assert "days left)" not in page
