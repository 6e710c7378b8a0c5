"""Through a real browser: create an Apple Pay key and CSR, download the CSR, have it signed by
a CA standing in for Apple, upload the .cer and find the certificate in the list."""

from pathlib import Path

import pytest
from cryptography import x509

from certificates.models import Certificate, CertificateRequest
from tests.apple import MERCHANT, apple_sign_csr
from tests.browser.conftest import log_in
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_gets_a_payment_processing_certificate_through_a_csr(
    browser_page, alice, acme, apple_ca
):
    page = browser_page
    log_in(page, "alice", PASSWORD)

    page.click("text=New certificate")
    page.locator(".choice", has_text="Apple Pay payment processing").get_by_text(
        "Create key and CSR"
    ).click()
    assert page.locator("#id_kind_1").is_checked()  # the type chosen on the previous page
    page.fill("#id_merchant_identifier", MERCHANT)
    page.fill("#id_name", "Acme Apple Pay")
    page.click("button:has-text('Create key and CSR')")
    page.wait_for_selector("text=CSR pending")

    with page.expect_download() as download_info:
        page.locator(".actions").get_by_text("Download CSR").click()
    download = download_info.value
    assert download.suggested_filename == f"{MERCHANT}.certSigningRequest"
    csr_pem = Path(download.path()).read_bytes()
    assert csr_pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    assert b"PRIVATE KEY" not in csr_pem

    # Apple (here its stand-in) signs the CSR and returns a DER .cer.
    cer = apple_sign_csr(apple_ca, csr_pem)
    page.set_input_files(
        "#id_certificate",
        {"name": "apple_pay.cer", "mimeType": "application/pkix-cert", "buffer": cer},
    )
    page.click('button:has-text("Upload Apple\'s certificate")')
    page.wait_for_selector("text=stored")
    assert "PRIVATE KEY" not in page.content()

    expires = x509.load_der_x509_certificate(cer).not_valid_after_utc
    page.click("nav >> text=Certificates")
    assert page.locator("text=CSR pending").count() == 0
    row = page.locator("table.certificates tbody tr", has_text="Acme Apple Pay")
    assert row.count() == 1
    text = row.inner_text()
    assert "Apple Pay payment processing" in text
    assert MERCHANT in text
    assert f"{expires:%Y-%m-%d}" in text
    assert row.locator(".badge-valid").count() == 1
    certificate = Certificate.objects.get()
    assert certificate.certificate_request == CertificateRequest.objects.get()
    assert certificate.has_private_key
