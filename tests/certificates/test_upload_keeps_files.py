"""After a refusal, the upload pages keep the files that passed, so that only the refused ones
are chosen again (README, "Using it"): kept encrypted in the session, never sent back to the
browser, and named on the page. SSL and Apple Pay certificates alike."""

import pytest
from django.urls import reverse

from certificates.models import Certificate
from certmgr import demo_pki
from tests.apple import apple_issue
from tests.support import errors_of, upload

pytestmark = pytest.mark.django_db

SSL_URL = reverse("certificate_upload_ssl")
MERCHANT_IDENTITY_URL = reverse("certificate_upload_merchant_identity")


@pytest.fixture
def leaf(pki):
    return demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.example.test"])


def post(client, url, institution, **fields):
    return client.post(url, {"institution": institution.pk, "name": "Shop", **fields})


def test_a_refused_key_is_dropped_and_the_certificate_and_chain_are_kept(as_alice, acme, leaf, pki):
    other = demo_pki.private_key_generate("ec256")
    first = post(
        as_alice,
        SSL_URL,
        acme,
        certificate=upload("domain.crt", leaf.certificate_pem),
        private_key=upload("other.key", demo_pki.key_pem(other)),
        chain=upload("intermediate.crt", pki["intermediate"].certificate_pem),
    )

    assert list(errors_of(first)) == ["private_key"]
    html = first.content.decode()
    assert (
        "Kept from your last attempt, no need to choose them again: domain.crt (Certificate), "
        "intermediate.crt (Certificate chain)." in html
    )
    assert "Kept from your last attempt: domain.crt. Choose a file only to replace it." in html
    assert "Kept from your last attempt: other.key" not in html
    assert "BEGIN" not in html  # nothing of the files goes back to the browser
    assert b"BEGIN" not in as_alice.session["certificate_upload_draft"].encode()

    second = post(as_alice, SSL_URL, acme, private_key=upload("domain.key", leaf.key_pem))

    assert second.status_code == 302, errors_of(second)
    certificate = Certificate.objects.get()
    assert certificate.private_key_pem() == leaf.key_pem.decode()
    assert certificate.chain_pem.strip() == pki["intermediate"].certificate_pem.decode().strip()
    assert "certificate_upload_draft" not in as_alice.session


def test_a_refused_certificate_is_dropped_and_the_key_is_kept(as_alice, acme, leaf, pki):
    first = post(
        as_alice,
        SSL_URL,
        acme,
        certificate=upload("big.crt", leaf.certificate_pem + b"#" * 70_000),
        private_key=upload("domain.key", leaf.key_pem),
    )
    assert list(errors_of(first)) == ["certificate"]
    assert "domain.key (Certificate key)" in first.content.decode()

    second = post(as_alice, SSL_URL, acme, certificate=upload("domain.crt", leaf.certificate_pem))

    assert second.status_code == 302, errors_of(second)
    assert Certificate.objects.get().has_private_key


def test_files_that_all_passed_are_kept_when_another_field_is_refused(as_alice, acme, leaf):
    first = as_alice.post(
        SSL_URL,
        {
            "institution": acme.pk,
            "name": "",
            "certificate": upload("domain.crt", leaf.certificate_pem),
            "private_key": upload("domain.key", leaf.key_pem),
        },
    )
    assert list(errors_of(first)) == ["name"]

    second = post(as_alice, SSL_URL, acme)

    assert second.status_code == 302, errors_of(second)
    assert Certificate.objects.get().private_key_pem() == leaf.key_pem.decode()


def test_opening_the_page_again_starts_over(as_alice, acme, leaf):
    post(
        as_alice,
        SSL_URL,
        acme,
        certificate=upload("domain.crt", leaf.certificate_pem),
        private_key=upload("other.key", b"this is not a key"),
    )
    as_alice.get(SSL_URL)

    response = post(as_alice, SSL_URL, acme)

    assert errors_of(response) == {"certificate": ["Choose the certificate file."]}
    assert "Kept from your last attempt" not in response.content.decode()


def test_an_ssl_draft_is_not_taken_up_by_an_apple_pay_page(as_alice, acme, leaf):
    post(
        as_alice,
        SSL_URL,
        acme,
        certificate=upload("domain.crt", leaf.certificate_pem),
        private_key=upload("other.key", b"this is not a key"),
    )

    response = post(as_alice, MERCHANT_IDENTITY_URL, acme)

    assert errors_of(response) == {"certificate": ["Choose the certificate file."]}


def test_the_apple_pay_page_keeps_what_passed_too(as_alice, acme, apple_ca):
    issued = apple_issue(apple_ca, key_type="rsa2048")
    first = post(
        as_alice,
        MERCHANT_IDENTITY_URL,
        acme,
        merchant_identifier="merchant.com.other",
        certificate=upload("merchant_id.cer", issued.der),
        private_key=upload("merchant_id.key", issued.key_pem),
    )
    assert list(errors_of(first)) == ["merchant_identifier"]
    html = first.content.decode()
    assert "merchant_id.cer (Certificate), merchant_id.key (Certificate key)" in html
    assert "BEGIN" not in html

    second = post(as_alice, MERCHANT_IDENTITY_URL, acme, merchant_identifier="")

    assert second.status_code == 302, errors_of(second)
    certificate = Certificate.objects.get()
    assert certificate.kind == Certificate.Kind.APPLE_MERCHANT_IDENTITY
    assert certificate.private_key_pem() == issued.key_pem.decode()
