"""Done when (README, "Onboarding a hostname"): a manager onboards a hostname from nothing to
a served managed certificate by following only what the pages say, in a real browser under
the CSP, with real Pebble, a real DNS server (pebble-challtestsrv) and a real nginx.

The DNS records the customer controls are set through challtestsrv: at first the name points
elsewhere and has no TXT record (the pages name both), then the TXT record the page gives,
then the address of the platform. The issuance task
runs in a thread of this process as a worker would run it (no broker), while the page's
status section updates itself without a reload."""

import threading

import pytest

from acme_client import tasks as acme_tasks
from saleschannels.models import ChannelStatus, SalesChannel
from saleschannels.probe import certificate_fingerprint
from tests.browser import test_csp
from tests.browser.conftest import log_in
from tests.nginx import served_certificate
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOST = "shop.acme.test"
csp_watched_page = test_csp.watched_page


@pytest.fixture
def worker_thread(monkeypatch):
    """issue_certificate.delay runs the task in a thread, as a worker process would."""
    threads = []

    def run_later(*args):
        thread = threading.Thread(target=acme_tasks.issue_certificate, args=args)
        thread.start()
        threads.append(thread)

    monkeypatch.setattr(acme_tasks.issue_certificate, "delay", run_later)
    yield threads
    for thread in threads:
        thread.join(timeout=120)


def test_a_manager_onboards_a_hostname_by_following_the_pages(
    csp_watched_page, alice, acme, pebble, nginx_edge, worker_thread
):
    page = csp_watched_page
    pebble.dns.a_set(HOST, ["203.0.113.9"])  # the shop's old server
    log_in(page, "alice", PASSWORD, next_path="/")

    # 1. A new channel: its page says how to prove control of the name.
    test_csp.visit(page, "/saleschannels/new/")
    page.fill("#id_name", "Main shop")
    page.fill("#id_hostname", HOST)
    page.click("main form button[type=submit]")
    page.wait_for_selector("#ownership")
    assert "Not verified" in page.locator("#ownership").inner_text()
    txt_name = page.locator("#txt-name").inner_text()
    token = page.locator("#txt-value").inner_text()
    assert txt_name == f"_certmgr-challenge.{HOST}"

    # Verify now before publishing anything: the page names what is missing.
    page.click("button:has-text('Verify now')")
    page.wait_for_selector(".messages")
    assert f"There is no TXT record {txt_name}." in page.locator("#ownership").inner_text()

    # 2. The customer publishes the record the page gave; Verify now finds it.
    pebble.dns.txt_set(txt_name, token)
    page.click("button:has-text('Verify now')")
    page.wait_for_selector(f".messages:has-text('{HOST} is verified.')")

    # 3. Managed: the checks run before any order and name what is wrong, live.
    page.click("a:has-text('SSL Management')")
    page.check("input[name=mode][value=managed]")
    page.click("form.ssl-mode button[type=submit]")
    page.wait_for_selector("#channel-status")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#channel-status[data-status=waiting_dns]", timeout=60_000)
    status = page.locator("#channel-status").inner_text()
    assert f"{HOST} points at 203.0.113.9, not at the platform (127.0.0.1)." in status
    assert "Change its A/AAAA records to 127.0.0.1." in status
    assert pebble.orders_count() == 0

    # 4. The customer points the name at the platform; Check now, and the status section
    # follows checking and issuing to active without a reload.
    pebble.dns.a_clear(HOST)  # back to challtestsrv's default: 127.0.0.1
    page.click("button:has-text('Check now')")
    page.wait_for_selector(".messages")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#channel-status[data-status=active]", timeout=90_000)
    assert page.evaluate("window.__notReloaded === true")
    status = page.locator("#channel-status").inner_text()
    assert "The platform's certificate is served and renews automatically." in status
    assert "Pebble (test CA)" in status

    # 5. nginx serves the certificate the CA issued.
    channel = SalesChannel.objects.get(hostname=HOST)
    assert channel.status == ChannelStatus.ACTIVE
    served = served_certificate(nginx_edge.address, HOST)
    assert certificate_fingerprint(served) == channel.active_certificate.fingerprint_sha256
    assert pebble.orders_count() == 1
    assert test_csp.violations(page) == []
