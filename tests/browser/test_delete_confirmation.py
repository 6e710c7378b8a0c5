"""Through a real browser under the Content-Security-Policy: the Delete buttons lead to their
confirmation pages, and the confirmation buttons delete, with no script at all (so none that
the policy could block) and no violation raised."""

import pytest
from django.urls import reverse

from certificates import services as certificate_services
from certificates.models import Certificate, CertificateRequest
from saleschannels import services as channel_services
from saleschannels.models import SalesChannel
from tests.browser import test_csp
from tests.browser.conftest import log_in
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The CSP test's page, recording violations, under a name of this module's.
csp_watched_page = test_csp.watched_page


def confirm_through_the_page(page, start: str, button: str, landing: str) -> str:
    """Open `start`, click Delete…, read the confirmation page, confirm; the page's text."""
    test_csp.visit(page, start)
    page.click("a.button.danger:has-text('Delete')")
    page.wait_for_selector("form.confirm-delete")
    assert page.evaluate("[...document.scripts].filter(script => !script.src).length") == 0
    text = page.locator("main").inner_text()
    page.click(f"form.confirm-delete button:has-text('{button}')")
    page.wait_for_url(f"**{landing}")
    page.wait_for_load_state("load")
    assert test_csp.violations(page) == []
    return text


def test_the_confirmation_buttons_delete_without_script(
    csp_watched_page, alice, acme, make_certificate
):
    page = csp_watched_page
    certificate = make_certificate(acme, name="Spare certificate", hostnames=["spare.acme.test"])
    channel = channel_services.channel_create(
        institution=acme, name="Main shop", hostname="shop.acme.test", actor=alice
    )
    request = certificate_services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_PAYMENT_PROCESSING,
        merchant_identifier="merchant.test.browser",
        name="Browser CSR",
        actor=alice,
    )
    log_in(page, "alice", PASSWORD, next_path="/")

    shown = confirm_through_the_page(
        page, channel.get_absolute_url(), "Delete shop.acme.test", reverse("channel_list")
    )
    assert "Delete Main shop?" in shown
    assert not SalesChannel.objects.filter(pk=channel.pk).exists()
    assert "Sales channel shop.acme.test deleted." in page.locator(".messages").inner_text()

    shown = confirm_through_the_page(
        page, certificate.get_absolute_url(), "Delete Spare certificate", "/certificates/"
    )
    assert "No sales channel: none loses its certificate." in shown
    assert not Certificate.objects.filter(pk=certificate.pk).exists()

    confirm_through_the_page(page, request.get_absolute_url(), "Delete the CSR", "/certificates/")
    assert not CertificateRequest.objects.filter(pk=request.pk).exists()
