"""Through a real browser: the main pages, the admin included, under the Content-Security-Policy
raise no violation (neither a `securitypolicyviolation` event nor a console message) and still
look and work as they should: the stylesheet applies, the chart's bars and the upload form
work."""

import pytest
from django.urls import reverse

from certificates import services
from certificates.models import CertificateRequest
from saleschannels.models import SalesChannel
from tests.browser.conftest import log_in
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Added to every document before its own scripts run (Playwright injects it outside the
# page's CSP); the page's violations are read back from window.__cspViolations.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def watched_page(browser_page):
    """The browser page, recording CSP violations as events and as console messages."""
    page = browser_page
    page.add_init_script(RECORD_VIOLATIONS)
    page.console_violations = []
    page.on(
        "console",
        lambda message: (
            page.console_violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return page


def violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations") + page.console_violations


def visit(page, path: str) -> None:
    response = page.goto(path)
    assert response.status == 200, path
    assert "unsafe" not in response.headers["content-security-policy"]
    page.wait_for_load_state("load")
    assert violations(page) == [], path


def test_the_main_pages_raise_no_csp_violation(watched_page, alice, acme, make_certificate):
    page = watched_page
    certificate = make_certificate(acme, name="Shop", hostnames=["shop.acme.test"], days_left=5)
    channel = SalesChannel.objects.create(
        institution=acme,
        name="Main shop",
        hostname="shop.acme.test",
        ssl_mode="uploaded",
        certificate=certificate,
        active_certificate=certificate,
    )
    request = services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_PAYMENT_PROCESSING,
        merchant_identifier="merchant.test.browser",
        name="payment processing",
        actor=alice,
    )
    log_in(page, "alice", PASSWORD, next_path="/")
    assert violations(page) == []  # the login page and the dashboard it led to

    for path in (
        reverse("home"),
        reverse("certificate_list"),
        reverse("certificate_detail", args=[certificate.pk]),
        reverse("certificate_new"),
        reverse("certificate_upload_ssl"),
        reverse("certificate_request_new"),
        reverse("certificate_request_detail", args=[request.pk]),
        reverse("channel_list"),
        reverse("channel_detail", args=[channel.pk]),
        reverse("channel_ssl", args=[channel.pk]),
        reverse("channel_apple_pay", args=[channel.pk]),
        reverse("institution_list"),
        reverse("institution_notifications", args=[acme.slug]),
        reverse("history"),
    ):
        visit(page, path)

    # The stylesheet, a static file, applies: the top bar is not the browser's default.
    visit(page, reverse("home"))
    topbar_background = page.locator("header.topbar").evaluate(
        "element => getComputedStyle(element).backgroundColor"
    )
    assert topbar_background == "rgb(20, 33, 61)"  # #14213d in static/certmgr.css
    # The chart's bars are links that work.
    page.locator("svg.chart.timeline g.week a").first.click()
    page.wait_for_url("**/certificates/?**")
    assert "Shop" in page.locator("table.certificates").inner_text()
    # A form posts (form-action 'self'): an empty upload comes back with its errors.
    visit(page, reverse("certificate_upload_ssl"))
    page.click("button:has-text('Upload')")
    page.wait_for_load_state("load")
    assert violations(page) == []


def test_the_admin_raises_no_csp_violation(watched_page, django_user_model, acme):
    page = watched_page
    django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    channel = SalesChannel.objects.create(institution=acme, name="Main", hostname="shop.acme.test")
    log_in(page, "root", PASSWORD, next_path="/admin/")
    for path in (
        reverse("admin:index"),
        reverse("admin:saleschannels_saleschannel_changelist"),
        reverse("admin:saleschannels_saleschannel_change", args=[channel.pk]),
        reverse("admin:auth_user_add"),
    ):
        visit(page, path)
    # The admin's own scripts run: the navigation sidebar's toggle works.
    sidebar = page.locator("#nav-sidebar")
    shown = sidebar.is_visible()
    page.click("#toggle-nav-sidebar")
    page.wait_for_function(
        "shown => (getComputedStyle(document.querySelector('#nav-sidebar')).visibility"
        " === 'visible') !== shown",
        arg=shown,
    )
    assert violations(page) == []


def test_a_violation_would_be_seen(watched_page, alice):
    """The recorder is not blind: an inline script, which the policy blocks, is reported."""
    page = watched_page
    log_in(page, "alice", PASSWORD, next_path="/")
    page.evaluate(
        """() => {
        const script = document.createElement("script");
        script.textContent = "window.__inlineRan = true";
        document.body.appendChild(script);
    }"""
    )
    page.wait_for_function("window.__cspViolations.length > 0")
    assert page.evaluate("window.__inlineRan === undefined")
    assert any(entry.startswith("script-src") for entry in violations(page))
