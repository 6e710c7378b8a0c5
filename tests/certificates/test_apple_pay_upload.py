"""Uploading Apple Pay's files: the identity proof (bytes kept exactly, expiry typed), and
merchant identity and payment processing certificates that exist already (.cer and key, or a
.p12 from Keychain), with Apple's key types and one active payment processing certificate per
merchant identifier."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from certificates.models import Certificate
from certmgr import demo_pki
from core import encryption
from core.models import AuditEvent
from monitoring.delivery import expiry_check
from monitoring.models import Notification
from tests.apple import MERCHANT, PROOF_BYTES, apple_issue, keychain_p12
from tests.support import errors_of, upload

pytestmark = pytest.mark.django_db

PROOF_URL = reverse("certificate_upload_identity_proof")
MERCHANT_IDENTITY_URL = reverse("certificate_upload_merchant_identity")
PAYMENT_PROCESSING_URL = reverse("certificate_upload_payment_processing")


@pytest.fixture(scope="module")
def merchant_identity(apple_ca):
    """Apple's merchant identity certificate (RSA 2048) with its key."""
    return apple_issue(apple_ca, key_type="rsa2048")


@pytest.fixture(scope="module")
def payment_processing(apple_ca):
    """Apple's payment processing certificate (EC P-256) with its key."""
    return apple_issue(apple_ca, key_type="ec256")


def post_proof(client, institution, data=PROOF_BYTES, expires_at=None, **fields):
    expires_at = expires_at or (date.today() + timedelta(days=365)).isoformat()
    return client.post(
        PROOF_URL,
        {
            "institution": institution.pk,
            "name": "Apple Pay domain file",
            "file": upload("apple-developer-merchantid-domain-association", data),
            "expires_at": expires_at,
            **fields,
        },
    )


def post_certificate(client, url, institution, **fields):
    return client.post(url, {"institution": institution.pk, "name": "Apple Pay", **fields})


# --- the choice of type -------------------------------------------------------------------


def test_the_new_page_lists_ssl_and_the_three_apple_pay_types(as_alice):
    html = as_alice.get(reverse("certificate_new")).content.decode()
    for text in (
        "SSL",
        "Apple Pay identity proof",
        "Apple Pay merchant identity",
        "Apple Pay payment processing",
    ):
        assert f"<strong>{text}</strong>" in html
    for url in (PROOF_URL, MERCHANT_IDENTITY_URL, PAYMENT_PROCESSING_URL):
        assert f'href="{url}"' in html
    assert f"{reverse('certificate_request_new')}?kind=apple_merchant_identity" in html
    assert f"{reverse('certificate_request_new')}?kind=apple_payment_processing" in html


def test_a_viewer_may_not_upload_apple_pay_files(client, bob):
    client.force_login(bob)
    for url in (PROOF_URL, MERCHANT_IDENTITY_URL, PAYMENT_PROCESSING_URL):
        assert client.get(url).status_code == 403


# --- identity proof -----------------------------------------------------------------------


def test_the_identity_proof_is_stored_byte_for_byte_with_the_typed_expiry(as_alice, acme, alice):
    response = post_proof(as_alice, acme, expires_at="2031-05-17")

    proof = Certificate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == proof.get_absolute_url()
    assert proof.kind == Certificate.Kind.APPLE_IDENTITY_PROOF
    assert bytes(proof.content) == PROOF_BYTES
    assert proof.expires_at == datetime(2031, 5, 17, tzinfo=UTC)
    assert proof.expiry_source == Certificate.ExpirySource.MANUAL
    assert proof.certificate_pem == "" and not proof.has_private_key
    assert proof.expiry_thresholds.exists()  # warned about like any certificate
    assert AuditEvent.objects.get().actor == alice
    detail = as_alice.get(proof.get_absolute_url()).content.decode()
    assert f"{len(PROOF_BYTES)} bytes, served exactly as uploaded" in detail
    download = as_alice.get(reverse("certificate_download", args=[proof.pk]))
    assert download.content == PROOF_BYTES


def test_the_identity_proof_needs_an_expiry_date_in_the_future(as_alice, acme):
    response = as_alice.post(
        PROOF_URL,
        {"institution": acme.pk, "name": "x", "file": upload("f", PROOF_BYTES)},
    )
    assert errors_of(response) == {"expires_at": ["This field is required."]}

    response = post_proof(as_alice, acme, expires_at="2020-01-01")
    assert errors_of(response) == {
        "expires_at": ["This date is in the past: the file has expired."]
    }
    assert not Certificate.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The submitted file is empty."),
        (b" \n", "The file is empty."),
        (b"x" * (64 * 1024 + 1), "The file is larger than 64 KiB"),
        (b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "private key"),
        (b"-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n", "private key"),
    ],
)
def test_the_identity_proof_refuses_what_must_not_be_published(as_alice, acme, data, message):
    response = post_proof(as_alice, acme, data=data)

    assert message in " ".join(errors_of(response)["file"])
    assert not Certificate.objects.exists()


def test_the_identity_proof_refuses_certificates_and_keys_in_der(as_alice, acme, merchant_identity):
    for data in (merchant_identity.der, merchant_identity.certificate_pem):
        response = post_proof(as_alice, acme, data=data)
        assert "This is a certificate, not the domain-association file" in str(errors_of(response))
    der_key = keychain_p12(merchant_identity, b"pw")
    response = post_proof(as_alice, acme, data=der_key)
    assert "private key (DER or PKCS#12)" in str(errors_of(response))


def test_another_institution_cannot_be_chosen(client, charlie, acme):
    client.force_login(charlie)
    response = post_proof(client, acme)
    assert "institution" in errors_of(response)
    assert not Certificate.objects.exists()


# --- merchant identity and payment processing certificates -----------------------------------


def test_a_merchant_identity_certificate_is_stored_with_its_key_and_merchant(
    as_alice, acme, merchant_identity
):
    response = post_certificate(
        as_alice,
        MERCHANT_IDENTITY_URL,
        acme,
        certificate=upload("merchant_id.cer", merchant_identity.der),
        private_key=upload("merchant_id.key", merchant_identity.key_pem),
    )

    certificate = Certificate.objects.get()
    assert response.status_code == 302, errors_of(response)
    assert certificate.kind == Certificate.Kind.APPLE_MERCHANT_IDENTITY
    assert certificate.merchant_identifier == MERCHANT  # read from the certificate's UID
    assert certificate.expires_at == merchant_identity.certificate.not_valid_after_utc
    assert certificate.expiry_source == Certificate.ExpirySource.PARSED
    assert certificate.key_description == "RSA 2048"
    assert encryption.decrypt(certificate.private_key_encrypted) == merchant_identity.key_pem
    assert certificate.replaces is None
    html = as_alice.get(certificate.get_absolute_url()).content.decode()
    assert MERCHANT in html and "PRIVATE KEY" not in html


def test_a_keychain_p12_is_imported_with_its_password(as_alice, acme, payment_processing):
    p12 = keychain_p12(payment_processing, b"keychain secret")

    wrong = post_certificate(
        as_alice,
        PAYMENT_PROCESSING_URL,
        acme,
        certificate=upload("Certificates.p12", p12),
        passphrase="not it",
    )
    assert errors_of(wrong) == {"passphrase": ["The password of the PKCS#12 file is wrong."]}

    response = post_certificate(
        as_alice,
        PAYMENT_PROCESSING_URL,
        acme,
        certificate=upload("Certificates.p12", p12),
        passphrase="keychain secret",
    )
    certificate = Certificate.objects.get()
    assert response.status_code == 302, errors_of(response)
    assert certificate.kind == Certificate.Kind.APPLE_PAYMENT_PROCESSING
    assert certificate.key_description == "EC P-256"
    assert certificate.merchant_identifier == MERCHANT
    assert encryption.decrypt(certificate.private_key_encrypted) == payment_processing.key_pem


def test_a_merchant_identity_certificate_must_have_an_rsa_2048_key(as_alice, acme, apple_ca):
    for key_type, described in (("ec256", "EC P-256"), ("rsa4096", "RSA 4096")):
        issued = apple_issue(apple_ca, key_type=key_type)
        response = post_certificate(
            as_alice,
            MERCHANT_IDENTITY_URL,
            acme,
            certificate=upload("merchant_id.cer", issued.der),
            private_key=upload("merchant_id.key", issued.key_pem),
        )
        assert errors_of(response) == {
            "certificate": [
                "A merchant identity certificate has an RSA 2048-bit key (Apple's requirement); "
                f"this one has {described}."
            ]
        }
    assert not Certificate.objects.exists()


def test_a_payment_processing_certificate_must_have_an_ec_p256_key(
    as_alice, acme, apple_ca, merchant_identity
):
    for issued, described in (
        (merchant_identity, "RSA 2048"),
        (apple_issue(apple_ca, key_type="ec384"), "EC P-384"),
    ):
        response = post_certificate(
            as_alice,
            PAYMENT_PROCESSING_URL,
            acme,
            certificate=upload("apple_pay.cer", issued.der),
            private_key=upload("apple_pay.key", issued.key_pem),
        )
        assert errors_of(response) == {
            "certificate": [
                "A payment processing certificate has an EC P-256 key (Apple's requirement); "
                f"this one has {described}."
            ]
        }


def test_the_merchant_identifier_is_checked(as_alice, acme, apple_ca, payment_processing):
    def post(issued, merchant):
        return post_certificate(
            as_alice,
            PAYMENT_PROCESSING_URL,
            acme,
            merchant_identifier=merchant,
            certificate=upload("apple_pay.cer", issued.der),
            private_key=upload("apple_pay.key", issued.key_pem),
        )

    assert "starts with “merchant.”" in str(errors_of(post(payment_processing, "com.acme")))
    assert "starts with “merchant.”" in str(errors_of(post(payment_processing, "merchant.a b")))
    assert errors_of(post(payment_processing, "merchant.com.other")) == {
        "merchant_identifier": [
            f"The certificate was issued for {MERCHANT}, not for merchant.com.other."
        ]
    }
    unnamed = apple_issue(
        apple_ca,
        key_type="ec256",
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Apple Pay Processing")]),
    )
    assert errors_of(post(unnamed, "")) == {
        "merchant_identifier": ["The certificate does not name its merchant identifier: enter it."]
    }
    assert post(unnamed, "merchant.com.typed").status_code == 302
    assert Certificate.objects.get().merchant_identifier == "merchant.com.typed"


def test_an_unreadable_apple_certificate_is_refused_without_asking_for_a_date(as_alice, acme):
    response = post_certificate(
        as_alice, MERCHANT_IDENTITY_URL, acme, certificate=upload("x.cer", b"not a certificate")
    )
    assert errors_of(response) == {
        "certificate": ["The file could not be read as a certificate (PEM, DER or PKCS#12)."]
    }
    assert 'name="expires_at"' not in response.content.decode()


def test_an_apple_certificate_without_key_is_tracked(as_alice, acme, merchant_identity):
    response = post_certificate(
        as_alice,
        MERCHANT_IDENTITY_URL,
        acme,
        certificate=upload("merchant_id.cer", merchant_identity.certificate_pem),
    )
    assert response.status_code == 302
    certificate = Certificate.objects.get()
    assert not certificate.has_private_key
    assert "No private key" in certificate.warnings[0]


# --- one active payment processing certificate per merchant ---------------------------------


def post_payment_processing(client, institution, issued, name):
    response = client.post(
        PAYMENT_PROCESSING_URL,
        {
            "institution": institution.pk,
            "name": name,
            "certificate": upload("apple_pay.cer", issued.der),
            "private_key": upload("apple_pay.key", issued.key_pem),
        },
        follow=True,
    )
    assert response.status_code == 200
    return Certificate.objects.get(name=name), response.content.decode()


def test_a_new_payment_processing_certificate_replaces_the_active_one(as_alice, acme, apple_ca):
    first, _ = post_payment_processing(
        as_alice, acme, apple_issue(apple_ca, key_type="ec256"), "2025"
    )
    assert "The active payment processing certificate of" in (
        as_alice.get(first.get_absolute_url()).content.decode()
    )

    second, page = post_payment_processing(
        as_alice, acme, apple_issue(apple_ca, key_type="ec256"), "2027"
    )

    assert second.replaces == first
    assert f"It replaces “2025” as the active payment processing certificate of {MERCHANT}" in page
    assert "It replaces <a href" in page and "Active</span>" in page
    # The replaced one is no longer warned about.
    assert not first.expiry_thresholds.filter(crossed_at__gt=timezone.now()).exists()
    old_page = as_alice.get(first.get_absolute_url()).content.decode()
    assert "Replaced by <a" in old_page and "2027" in old_page
    assert "Active</span>" not in old_page

    third, _ = post_payment_processing(
        as_alice, acme, apple_issue(apple_ca, key_type="ec256"), "2029"
    )
    assert third.replaces == second  # the chain goes on from the active one


def test_replacement_stays_within_the_merchant_and_the_institution(
    client, alice, charlie, acme, opera, apple_ca
):
    client.force_login(alice)
    acme_first, _ = post_payment_processing(
        client, acme, apple_issue(apple_ca, key_type="ec256"), "acme"
    )
    other_merchant, _ = post_payment_processing(
        client,
        acme,
        apple_issue(apple_ca, key_type="ec256", merchant="merchant.com.acme-tickets.app"),
        "acme app",
    )
    assert other_merchant.replaces is None
    client.force_login(charlie)
    opera_first, _ = post_payment_processing(
        client, opera, apple_issue(apple_ca, key_type="ec256"), "opera"
    )
    assert opera_first.replaces is None
    assert not acme_first.replaced_by.exists()


def test_an_expired_payment_processing_certificate_replaces_nothing(as_alice, acme, apple_ca):
    active, _ = post_payment_processing(
        as_alice, acme, apple_issue(apple_ca, key_type="ec256"), "active"
    )
    old_start = timezone.now() - timedelta(days=800)
    expired = apple_issue(
        apple_ca, key_type="ec256", not_before=old_start, not_after=old_start + timedelta(days=761)
    )

    stored, page = post_payment_processing(as_alice, acme, expired, "for the record")

    assert stored.replaces is None
    assert "Not active: it has expired." in as_alice.get(stored.get_absolute_url()).content.decode()
    assert "Active</span>" in as_alice.get(active.get_absolute_url()).content.decode()


# --- expiry alerts --------------------------------------------------------------------------


def test_an_apple_certificate_close_to_expiry_shows_in_the_banner_and_is_notified(
    as_alice, acme, apple_ca, settings
):
    settings.CERTMGR_BASE_URL = "https://certmgr.example.test"
    acme.notification_emails = "ops@acme.test"
    acme.save()
    soon = apple_issue(
        apple_ca,
        key_type="rsa2048",
        not_before=timezone.now() - timedelta(days=756),
        not_after=timezone.now() + timedelta(days=5),
    )
    response = post_certificate(
        as_alice,
        MERCHANT_IDENTITY_URL,
        acme,
        certificate=upload("merchant_id.cer", soon.der),
        private_key=upload("merchant_id.key", soon.key_pem),
    )
    assert response.status_code == 302
    certificate = Certificate.objects.get()

    page = as_alice.get(reverse("certificate_list"))
    assert page.context["rows"][0]["certificate"].status == "critical"
    assert page.wsgi_request.certificate_alerts.critical == 1
    assert 'data-level="critical"' in page.content.decode()

    expiry_check()

    notification = Notification.objects.get()
    assert (notification.certificate, notification.threshold) == (certificate, "7d")
    assert len(mail.outbox) == 1
    assert "Renew it in your Apple Developer account" in mail.outbox[0].body

    with time_machine.travel(timezone.now() + timedelta(days=6)):
        expiry_check()
        expired = as_alice.get(reverse("certificate_list"), {"status": "expired"})
        assert [row["certificate"] for row in expired.context["rows"]] == [certificate]
    assert set(Notification.objects.values_list("threshold", flat=True)) == {"7d", "0d"}


# --- an issuer other than Apple ----------------------------------------------------------


def test_a_merchant_identity_certificate_not_issued_by_apple_is_stored_with_a_warning(
    as_alice, acme, pki
):
    stranger = demo_pki.ca_create(common_name="Acme Internal CA", issuer=pki["root"])
    issued = apple_issue(stranger, key_type="rsa2048")
    response = post_certificate(
        as_alice,
        MERCHANT_IDENTITY_URL,
        acme,
        certificate=upload("merchant_id.cer", issued.der),
        private_key=upload("merchant_id.key", issued.key_pem),
    )

    assert response.status_code == 302, errors_of(response)
    certificate = Certificate.objects.get()
    warning = (
        "A merchant identity certificate is issued by Apple, but this one was issued by "
        "Acme Internal CA (certmgr demo (not for production)). It is stored, but Apple Pay "
        "works only with the certificate Apple issued"
    )
    assert certificate.warnings[0].startswith(warning)
    # Said at once on the page the upload leads to, and kept on the certificate's page.
    shown = as_alice.get(response["Location"]).content.decode()
    assert escape(warning) in shown
    assert shown.count(escape(warning)) == 2  # the message and the stored warning
    assert escape(warning) in as_alice.get(certificate.get_absolute_url()).content.decode()


def test_a_certificate_apple_issued_gets_no_issuer_warning(as_alice, acme, merchant_identity):
    response = post_certificate(
        as_alice,
        MERCHANT_IDENTITY_URL,
        acme,
        certificate=upload("merchant_id.cer", merchant_identity.der),
        private_key=upload("merchant_id.key", merchant_identity.key_pem),
    )
    assert response.status_code == 302
    assert Certificate.objects.get().warnings == []
    assert "issued by Apple, but" not in as_alice.get(response["Location"]).content.decode()
