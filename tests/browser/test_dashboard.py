"""Through a real browser: the dashboard's timeline chart, its bars and their links; a screenshot
is kept under var/artifacts/ for CI to publish."""

import pytest
from django.conf import settings

from saleschannels.models import SalesChannel
from tests.browser.conftest import log_in
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_an_operator_reads_the_timeline_and_follows_a_bar(
    browser_page, alice, acme, opera, make_certificate
):
    page = browser_page
    # n days left, created now: expires on the day n days from today, i.e. in week n // 7.
    make_certificate(acme, name="Box office", days_left=3)  # week 0, critical
    make_certificate(acme, name="Shop", hostnames=["shop.acme.test"], days_left=5)  # week 0
    make_certificate(acme, name="Members", days_left=20)  # week 2, expiring
    make_certificate(acme, name="Donations", days_left=24)  # week 3, expiring
    make_certificate(acme, name="Gift cards", days_left=29)  # week 4, expiring
    make_certificate(acme, name="Vouchers", days_left=33)  # week 4, valid
    make_certificate(acme, name="Archive", days_left=45)  # week 6, valid
    make_certificate(acme, name="Festival", days_left=48)  # week 6, valid
    make_certificate(acme, name="Tours", days_left=80)  # week 11, valid
    make_certificate(acme, name="Old shop", days_left=-4)  # expired: counted, not charted
    make_certificate(opera, name="Opera", days_left=3)  # another institution's
    shop = acme.certificates.get(name="Shop")
    SalesChannel.objects.create(
        institution=acme,
        name="Main shop",
        hostname="shop.acme.test",
        ssl_mode="uploaded",
        certificate=shop,
        active_certificate=shop,
        probe_status="mismatch",
    )
    log_in(page, "alice", PASSWORD, next_path="/")

    chart = page.locator("svg.chart.timeline")
    assert chart.is_visible()
    assert chart.get_attribute("aria-labelledby") == "expiry-timeline-title"
    weeks = chart.locator("g.week")
    assert weeks.count() == 13
    bars = chart.locator("g.week a")
    assert bars.count() == 6
    assert [weeks.nth(i).get_attribute("data-total") for i in range(13)] == [
        "2", "0", "1", "1", "2", "0", "2", "0", "0", "0", "0", "1", "0",
    ]  # fmt: skip
    assert chart.locator("rect.segment[data-status=critical]").count() == 1
    assert chart.locator("rect.segment[data-status=expiring]").count() == 3
    assert chart.locator("rect.segment[data-status=valid]").count() == 3
    stacked = weeks.nth(4).locator("rect.segment")
    assert [stacked.nth(i).get_attribute("data-status") for i in range(2)] == ["expiring", "valid"]
    assert chart.locator("g.legend text").all_text_contents() == ["Critical", "Expiring", "Valid"]
    first_bar = weeks.nth(0).locator("rect.segment")
    assert first_bar.bounding_box()["height"] > 50  # drawn, and tall: the busiest week
    assert page.locator(".status-card[data-status=expired] .count").inner_text() == "1"
    assert "Live probe: serves another certificate" in page.locator(".channel-actions").inner_text()

    artifacts = settings.VAR_DIR / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    screenshot = artifacts / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)

    weeks.nth(6).locator("a").click()
    page.wait_for_url("**/certificates/?expires_after=*")
    names = page.locator("table.certificates tbody tr td:first-child").all_inner_texts()
    assert sorted(names) == ["Archive", "Festival"]
