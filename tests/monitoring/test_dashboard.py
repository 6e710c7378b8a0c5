"""The dashboard (`/`): counts by status, the expiry timeline and the channels needing action,
scoped to the user's institutions, in a fixed number of queries."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certificates.models import Certificate
from monitoring import dashboard
from saleschannels.models import SalesChannel
from tests.support import page_html

HOME = reverse("home")
LIST = reverse("certificate_list")


@pytest.fixture
def noon():
    """Today at noon UTC, clock stopped: a certificate made with `days_left=n` expires exactly
    n days from now, on the day n days from today."""
    moment = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with time_machine.travel(moment, tick=False):
        yield moment


def channel(institution, hostname, *, certificate=None, **fields) -> SalesChannel:
    return SalesChannel.objects.create(
        institution=institution,
        name=hostname.split(".")[0].title(),
        hostname=hostname,
        ssl_mode=fields.pop("ssl_mode", "uploaded" if certificate else "none"),
        certificate=certificate,
        active_certificate=certificate,
        **fields,
    )


def bulk_certificates(institution, count: int, *, days_left: int = 40) -> None:
    """Rows only (no PEM): enough for counts, the timeline and the metrics."""
    expires_at = timezone.now() + timedelta(days=days_left)
    Certificate.objects.bulk_create(
        Certificate(institution=institution, name=f"bulk {n}", expires_at=expires_at)
        for n in range(count)
    )


# Counts ---------------------------------------------------------------------------------------


def test_it_counts_the_users_certificates_by_status(
    noon, alice, charlie, sam, acme, opera, make_certificate
):
    for days_left in (80, 50, 20, 25, 3, -1, -2):
        make_certificate(acme, days_left=days_left)
    make_certificate(opera, days_left=-5)
    assert dashboard.status_counts(user=alice, now=noon) == {
        "valid": 2,
        "expiring": 2,
        "critical": 1,
        "expired": 2,
        "not_yet_valid": 0,
        "unverified": 0,
    }
    assert dashboard.status_counts(user=charlie, now=noon)["expired"] == 1
    assert sum(dashboard.status_counts(user=charlie, now=noon).values()) == 1
    assert sum(dashboard.status_counts(user=sam, now=noon).values()) == 8


def test_the_page_shows_the_counts_each_linking_to_its_status(
    noon, as_alice, acme, make_certificate
):
    make_certificate(acme, days_left=3)
    make_certificate(acme, days_left=-1)
    page = page_html(as_alice.get(HOME))
    assert re.search(
        r'href="/certificates/\?status=critical" data-status="critical">\s*'
        r'<span class="count">1</span>',
        page,
    )
    assert 'href="/certificates/?status=expired"' in page
    assert ">All 2 certificates<" in page


def test_it_needs_a_login(client):
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# Timeline -------------------------------------------------------------------------------------


def chart(response) -> str:
    match = re.search(r"<svg .*?</svg>", page_html(response), re.S)
    assert match, "no chart on the page"
    return match[0]


def week_groups(svg: str) -> list[str]:
    return re.findall(r'<g class="week".*?</g>', svg, re.S)


def segment_counts(group: str) -> dict[str, int]:
    return {
        status: int(count)
        for status, count in re.findall(r'data-status="(\w+)" data-count="(\d+)"', group)
    }


def test_the_timeline_has_thirteen_weeks_stacked_by_status(
    noon, as_alice, acme, opera, make_certificate
):
    make_certificate(acme, name="tomorrow", days_left=1)  # week 0, critical
    make_certificate(acme, name="in 6 days", days_left=6)  # week 0, critical
    make_certificate(acme, name="in 20 days", days_left=20)  # week 2, expiring
    make_certificate(acme, name="in 45 days", days_left=45)  # week 6, valid
    make_certificate(acme, name="in 90 days", days_left=90)  # week 12, valid
    make_certificate(acme, name="in 91 days", days_left=91)  # after the timeline
    make_certificate(acme, name="yesterday", days_left=-1)  # before it
    make_certificate(opera, name="opera", days_left=1)  # someone else's
    groups = week_groups(chart(as_alice.get(HOME)))
    assert len(groups) == 13
    assert [segment_counts(group) for group in groups] == [
        {"critical": 2},
        {},
        {"expiring": 1},
        {},
        {},
        {},
        {"valid": 1},
        {},
        {},
        {},
        {},
        {},
        {"valid": 1},
    ]
    assert [group.count("<a ") for group in groups] == [1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_the_first_week_also_shows_what_expired_earlier_today(
    noon, as_alice, acme, make_certificate
):
    make_certificate(acme, name="this morning", days_left=-0.25)
    (first, *_) = week_groups(chart(as_alice.get(HOME)))
    assert segment_counts(first) == {"expired": 1}


def test_the_chart_is_titled_and_described(noon, as_alice, acme, make_certificate):
    make_certificate(acme, days_left=20)
    svg = chart(as_alice.get(HOME))
    assert 'role="group"' in svg
    assert 'aria-labelledby="expiry-timeline-title"' in svg
    assert 'aria-describedby="expiry-timeline-desc"' in svg
    title = '<title id="expiry-timeline-title">Certificate expiries in the next 13 weeks</title>'
    assert title in svg
    assert re.search(r'<desc id="expiry-timeline-desc">[^<]*1 certificate in all: 1 expiring', svg)


def test_each_bar_links_to_exactly_its_certificates(noon, as_alice, acme, make_certificate):
    expected_by_week = {
        0: {"this morning", "tomorrow", "in 6 days"},
        1: {"in 7 days", "in 13 days"},
        12: {"in 84 days", "in 90 days"},
    }
    make_certificate(acme, name="this morning", days_left=-0.25)
    make_certificate(acme, name="yesterday", days_left=-1)
    for days_left in (1, 6, 7, 13, 84, 90, 91):
        name = "tomorrow" if days_left == 1 else f"in {days_left} days"
        make_certificate(acme, name=name, days_left=days_left)
    groups = week_groups(chart(as_alice.get(HOME)))
    for index, expected in expected_by_week.items():
        (href,) = re.findall(r'<a href="([^"]+)"', groups[index])
        response = as_alice.get(html.unescape(href))
        assert {row["certificate"].name for row in response.context["rows"]} == expected, index


def test_the_list_filters_on_expiry_dates_and_ignores_invalid_ones(
    noon, as_alice, acme, make_certificate
):
    make_certificate(acme, name="soon", days_left=5)
    make_certificate(acme, name="later", days_left=40)
    today = noon.date()

    def names(**params) -> list[str]:
        return [row["certificate"].name for row in as_alice.get(LIST, params).context["rows"]]

    assert names(expires_after=(today + timedelta(days=5)).isoformat()) == ["soon", "later"]
    assert names(expires_after=(today + timedelta(days=6)).isoformat()) == ["later"]
    assert names(expires_before=(today + timedelta(days=5)).isoformat()) == []
    assert names(expires_before=(today + timedelta(days=6)).isoformat()) == ["soon"]
    assert names(expires_after="yesterday", expires_before="2025-02-30") == ["soon", "later"]
    assert names(expires_after="0001-01-01", expires_before="9999-12-31") == ["soon", "later"]
    page = page_html(as_alice.get(LIST, {"expires_after": today.isoformat()}))
    assert f'name="expires_after" value="{today.isoformat()}"' in page


# Channels needing action ----------------------------------------------------------------------


def texts(action) -> list[str]:
    return [reason.text for reason in action.reasons]


# What acme_client stores of a failed renewal: the CA's raw text, for the log and the admin
# only, and the status with its typed reason, whose words every page shows.
RAW_ERROR = "urn:ietf:params:acme:error:connection: 203.0.113.9:80: Connection refused (raw)"
CONNECTION_WORDS = "The CA (Pebble (test CA)) could not connect to the hostname to validate it."
CONNECTION_ADVICE = "Check that port 80 of the hostname reaches the platform's edge."


@pytest.fixture
def troubled_channels(noon, acme, opera, make_certificate):
    channel(
        acme, "fine.acme.test", certificate=make_certificate(acme, days_left=60), probe_status="ok"
    )
    channel(acme, "soon.acme.test", certificate=make_certificate(acme, name="Soon", days_left=3))
    channel(
        acme,
        "renewal.acme.test",
        ssl_mode="managed",
        renewal_failures=3,
        renewal_last_error=RAW_ERROR,
        status="renewal_failing",
        status_reason="acme_connection",
        status_params={"ca": "Pebble (test CA)"},
    )
    channel(acme, "once.acme.test", ssl_mode="managed", renewal_failures=1)  # not yet
    channel(
        acme,
        "wrong.acme.test",
        certificate=make_certificate(acme, days_left=60),
        probe_status="mismatch",
    )
    channel(acme, "gone.acme.test", certificate=make_certificate(acme, name="Gone", days_left=-2))
    channel(opera, "opera.test", certificate=make_certificate(opera, days_left=-1))


def test_it_lists_the_channels_needing_action_most_urgent_first_with_reasons(
    noon, alice, troubled_channels
):
    actions = dashboard.channel_actions(user=alice, now=noon)
    assert actions.total == 4
    assert [(a.channel.hostname, texts(a), a.level) for a in actions.channels] == [
        ("gone.acme.test", ["Its certificate expired 2 days ago"], "expired"),
        ("wrong.acme.test", ["Live probe: serves another certificate"], "expired"),
        (
            "renewal.acme.test",
            ["Renewal failed 3 times in a row: " + CONNECTION_WORDS],
            "expired",
        ),
        ("soon.acme.test", ["Its certificate expires in 3 days"], "critical"),
    ]


def test_a_channel_with_several_problems_shows_each(noon, alice, acme, make_certificate):
    channel(
        acme,
        "bad.acme.test",
        certificate=make_certificate(acme, days_left=-1),
        probe_status="expired",
    )
    (action,) = dashboard.channel_actions(user=alice, now=noon).channels
    assert texts(action) == [
        "Its certificate expired 1 day ago",
        "Live probe: serves an expired certificate",
    ]


def test_a_hostname_that_does_not_resolve_is_its_own_reason_with_advice(noon, alice, acme):
    channel(
        acme, "nowhere.acme.test", ssl_mode="uploaded", probe_status="failed", probe_failure="dns"
    )
    (action,) = dashboard.channel_actions(user=alice, now=noon).channels
    (reason,) = action.reasons
    assert reason.text == (
        "Live probe: nowhere.acme.test does not resolve in DNS, so the live probe could not "
        "check what it serves."
    )
    assert reason.advice.startswith("Give nowhere.acme.test an A/AAAA record")


def test_the_reasons_count_days_left_by_the_one_rule(noon, alice, acme, make_certificate):
    """Rounded up before expiry, down after it (certificates/expiry.py), not calendar days."""
    channel(acme, "today.acme.test", certificate=make_certificate(acme, days_left=0.4))
    channel(acme, "morning.acme.test", certificate=make_certificate(acme, days_left=-0.4))
    channel(acme, "tomorrow.acme.test", certificate=make_certificate(acme, days_left=0.6))
    channel(acme, "later.acme.test", certificate=make_certificate(acme, days_left=1.5))
    reasons = {
        action.channel.hostname: (texts(action), action.level)
        for action in dashboard.channel_actions(user=alice, now=noon).channels
    }
    assert reasons == {
        "morning.acme.test": (["Its certificate expired less than a day ago"], "expired"),
        "today.acme.test": (["Its certificate expires within a day"], "critical"),
        "tomorrow.acme.test": (["Its certificate expires within a day"], "critical"),
        "later.acme.test": (["Its certificate expires in 2 days"], "critical"),
    }


def test_charlie_sees_only_the_opera_channels(noon, charlie, troubled_channels, client):
    actions = dashboard.channel_actions(user=charlie, now=noon)
    assert [action.channel.hostname for action in actions.channels] == ["opera.test"]
    client.force_login(charlie)
    page = page_html(client.get(HOME))
    assert "opera.test" in page
    assert "acme.test" not in page


def test_the_page_lists_the_channels_and_their_reasons(noon, as_alice, troubled_channels):
    page = page_html(as_alice.get(HOME))
    for text in ("gone.acme.test", "Its certificate expired 2 days ago", "Gone", "Soon"):
        assert text in page
    assert "fine.acme.test" not in page
    assert "once.acme.test" not in page


def test_the_page_shows_each_channels_status_and_never_the_raw_error(
    noon, as_alice, troubled_channels
):
    page = page_html(as_alice.get(HOME))
    assert RAW_ERROR not in page
    assert "Connection refused" not in page
    assert "203.0.113.9" not in page
    assert html.escape(CONNECTION_WORDS) in page
    assert html.escape(CONNECTION_ADVICE) in page
    # The badge, as on the channel pages (saleschannels/_status_badge.html).
    assert 'class="badge status-badge status-renewal_failing"' in page
    assert ">Renewal failing</span>" in page


def test_a_renewal_failing_without_a_failing_status_says_no_words(noon, alice, acme):
    """Words come with a failing status only: another status's words say something else."""
    channel(
        acme,
        "stale.acme.test",
        ssl_mode="managed",
        renewal_failures=2,
        renewal_last_error=RAW_ERROR,
        status="checking",
    )
    (action,) = dashboard.channel_actions(user=alice, now=noon).channels
    assert texts(action) == ["Renewal failed 2 times in a row"]
    assert action.reasons[0].advice == ""


def test_it_shows_the_twenty_most_urgent_of_more(noon, alice, as_alice, acme):
    for n in range(23):
        channel(acme, f"shop{n:02}.acme.test", ssl_mode="uploaded", probe_status="failed")
    actions = dashboard.channel_actions(user=alice, now=noon)
    assert len(actions.channels) == 20
    assert actions.total == 23
    assert "The 20 most urgent of 23." in page_html(as_alice.get(HOME))


def test_it_says_when_nothing_needs_action(as_alice):
    assert "No sales channel needs action" in page_html(as_alice.get(HOME))


# Cost -----------------------------------------------------------------------------------------


def test_each_read_is_a_fixed_number_of_queries(noon, alice):
    def queries(read) -> int:
        with CaptureQueriesContext(connection) as captured:
            read(user=alice, now=noon)
        return len(captured.captured_queries)

    assert queries(dashboard.status_counts) == 1
    assert queries(dashboard.expiry_timeline) == 1
    assert queries(dashboard.channel_actions) == 2


def test_the_page_costs_the_same_number_of_queries_whatever_the_data_size(
    noon, as_alice, acme, make_certificate
):
    def page_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = as_alice.get(HOME)
        assert response.status_code == 200
        return len(captured.captured_queries)

    certificate = make_certificate(acme, days_left=3)
    channel(acme, "one.acme.test", certificate=certificate, probe_status="mismatch")
    small = page_queries()
    for days_left in (-1, 2, 20, 45, 80):
        bulk_certificates(acme, 40, days_left=days_left)
    for n in range(30):
        channel(acme, f"shop{n}.acme.test", certificate=certificate, probe_status="failed")
    assert page_queries() == small


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland", "America/Los_Angeles"])
def test_bars_and_their_links_agree_in_any_time_zone(
    noon, settings, as_alice, acme, make_certificate, zone
):
    settings.TIME_ZONE = zone
    for days_left in (-0.6, -0.3, 0.3, 0.6, 6.6, 6.9, 7.2, 13.7, 48.5, 90.4, 90.7, 91.2):
        make_certificate(acme, name=f"in {days_left} days", days_left=days_left)
    listed = set()
    for group in week_groups(chart(as_alice.get(HOME))):
        total = int(re.search(r'data-total="(\d+)"', group)[1])
        hrefs = re.findall(r'<a href="([^"]+)"', group)
        if not total:
            assert hrefs == []
            continue
        rows = as_alice.get(html.unescape(hrefs[0])).context["rows"]
        names = {row["certificate"].name for row in rows}
        assert len(names) == total
        assert not names & listed
        listed |= names
    first_day = timezone.localdate(noon)
    in_window = {
        certificate.name
        for certificate in Certificate.objects.all()
        if 0 <= (timezone.localdate(certificate.expires_at) - first_day).days < 91
    }
    assert listed == in_window
