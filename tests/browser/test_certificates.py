"""Through a real browser: log in, upload a certificate through the real form, see the banner."""

import pytest

from certmgr import demo_pki
from tests.browser.conftest import log_in
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_uploads_a_certificate_and_sees_it_in_the_list(browser_page, alice, acme, pki):
    page = browser_page
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.acme.test"])
    log_in(page, "alice", PASSWORD)

    page.click("text=New certificate")
    page.click("text=SSL")
    page.fill("#id_name", "Acme main shop")
    page.set_input_files(
        "#id_certificate",
        {
            "name": "domain.crt",
            "mimeType": "application/x-x509-ca-cert",
            "buffer": leaf.certificate_pem,
        },
    )
    page.set_input_files(
        "#id_private_key",
        {"name": "domain.key", "mimeType": "application/octet-stream", "buffer": leaf.key_pem},
    )
    page.set_input_files(
        "#id_chain",
        {
            "name": "intermediate.crt",
            "mimeType": "application/x-x509-ca-cert",
            "buffer": pki["intermediate"].certificate_pem,
        },
    )
    page.click("button:has-text('Upload')")

    page.wait_for_selector("text=uploaded")
    assert "shop.acme.test" in page.content()
    page.click("text=Certificates")
    row = page.locator("table.certificates tbody tr", has_text="Acme main shop")
    assert row.count() == 1
    assert "shop.acme.test" in row.inner_text()
    assert row.locator(".badge-valid").count() == 1
    assert "PRIVATE KEY" not in page.content()


def test_an_operator_sees_the_expired_banner_and_follows_it(
    browser_page, alice, acme, make_certificate
):
    page = browser_page
    make_certificate(acme, name="Forgotten shop", days_left=-3)
    make_certificate(acme, name="Fine shop", days_left=80)
    log_in(page, "alice", PASSWORD)

    banner = page.locator(".cert-alert")
    assert banner.get_attribute("data-level") == "expired"
    assert banner.get_attribute("data-count") == "1"
    banner.locator("a").first.click()
    page.wait_for_url("**status=expired**")
    rows = page.locator("table.certificates tbody tr")
    assert rows.count() == 1
    assert "Forgotten shop" in rows.inner_text()
