"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the live server."""

from urllib.parse import urlsplit

import pytest

from tests.support import require_program

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium reaches for Google's hosts at start, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(live_server, tmp_path, monkeypatch):
    require_program(CHROMIUM)
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself are still synchronous and safe. For this test only: monkeypatch unsets it
    # after this fixture's teardown, so the tests after it keep Django's guard.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


def log_in(page, username: str, password: str, *, next_path: str = "/certificates/") -> None:
    """Log in through the form and wait for `next_path` (the dashboard is at "/")."""
    page.goto(f"/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: urlsplit(url).path == next_path)
