"""certmgr creates the key and the CSR Apple asks for, and pairs the .cer Apple returns with
that key. A CA generated here stands in for Apple: it signs the CSR for its key and subject,
for 25 months, and answers a DER .cer as Apple's portal does."""

from datetime import timedelta

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certificates.models import Certificate, CertificateRequest
from core import encryption
from core.models import AuditEvent
from monitoring.delivery import expiry_check
from monitoring.models import Notification
from tests.apple import APPLE_LIFETIME, MERCHANT, apple_sign_csr, apple_subject
from tests.support import delete_confirmed, errors_of, upload

pytestmark = pytest.mark.django_db

NEW_URL = reverse("certificate_request_new")


def create_request(client, institution, kind="apple_payment_processing", merchant=MERCHANT, **kw):
    response = client.post(
        NEW_URL,
        {"institution": institution.pk, "kind": kind, "merchant_identifier": merchant, **kw},
    )
    assert response.status_code == 302, errors_of(response)
    return CertificateRequest.objects.latest("pk")


def csr_of(client, request: CertificateRequest) -> bytes:
    response = client.get(reverse("certificate_request_csr", args=[request.pk]))
    assert response.status_code == 200
    return response.content


def complete(client, request: CertificateRequest, cer: bytes, name="apple_pay.cer"):
    return client.post(
        reverse("certificate_request_complete", args=[request.pk]),
        {"certificate": upload(name, cer)},
    )


# --- the key and the CSR --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "key_class", "described"),
    [
        ("apple_merchant_identity", rsa.RSAPublicKey, "RSA 2048"),
        ("apple_payment_processing", ec.EllipticCurvePublicKey, "EC P-256"),
    ],
)
def test_it_creates_the_key_apple_requires_and_a_csr_for_it(
    as_alice, acme, alice, kind, key_class, described
):
    alice.email = "alice@acme.test"
    alice.save()
    response = as_alice.post(
        NEW_URL, {"institution": acme.pk, "kind": kind, "merchant_identifier": MERCHANT}
    )

    request = CertificateRequest.objects.get()
    assert response["Location"] == request.get_absolute_url()
    assert (request.kind, request.merchant_identifier, request.institution) == (
        kind,
        MERCHANT,
        acme,
    )
    assert request.is_pending and request.created_by == alice
    assert request.name.startswith(MERCHANT)
    # The key is kept encrypted, and the CSR is for it.
    assert "PRIVATE KEY" not in request.private_key_encrypted
    key = serialization.load_pem_private_key(request.private_key_pem().encode(), None)
    csr = x509.load_pem_x509_csr(request.csr_pem.encode())
    assert csr.is_signature_valid
    assert isinstance(csr.public_key(), key_class)
    assert csr.public_key() == key.public_key()
    if key_class is rsa.RSAPublicKey:
        assert csr.public_key().key_size == 2048
    else:
        assert csr.public_key().curve.name == "secp256r1"
    # Keychain's subject: the common name (the merchant identifier) and the e-mail address.
    assert csr.subject.rfc4514_string() == f"CN={MERCHANT},1.2.840.113549.1.9.1=alice@acme.test"
    assert AuditEvent.objects.get().action == AuditEvent.Action.REQUEST_CREATE
    page = as_alice.get(request.get_absolute_url()).content.decode()
    assert "CSR pending" in page and described in page and "PRIVATE KEY" not in page


def test_the_csr_downloads_as_a_cert_signing_request_without_the_key(as_alice, acme):
    request = create_request(as_alice, acme)

    response = as_alice.get(reverse("certificate_request_csr", args=[request.pk]))

    assert response["Content-Disposition"] == (
        f'attachment; filename="{MERCHANT}.certSigningRequest"'
    )
    assert response.content == request.csr_pem.encode()
    assert response.content.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    assert b"PRIVATE KEY" not in response.content
    assert request.private_key_pem().encode() not in response.content


def test_the_merchant_identifier_and_type_are_checked(as_alice, acme):
    for merchant in ("", "com.acme.shop", "merchant.", "merchant.acme shop", "merchant..x"):
        response = as_alice.post(
            NEW_URL,
            {
                "institution": acme.pk,
                "kind": "apple_payment_processing",
                "merchant_identifier": merchant,
            },
        )
        assert "merchant_identifier" in errors_of(response), merchant
    response = as_alice.post(
        NEW_URL, {"institution": acme.pk, "kind": "ssl", "merchant_identifier": MERCHANT}
    )
    assert "kind" in errors_of(response)
    assert not CertificateRequest.objects.exists()


def test_the_type_is_preselected_from_the_new_page(as_alice):
    html = as_alice.get(NEW_URL, {"kind": "apple_merchant_identity"}).content.decode()
    assert 'value="apple_merchant_identity" id="id_kind_0" required checked' in html


# --- the round trip -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["apple_merchant_identity", "apple_payment_processing"])
def test_apples_cer_is_paired_with_the_stored_key(as_alice, acme, alice, apple_ca, kind):
    request = create_request(as_alice, acme, kind=kind, name="Acme Apple Pay")
    key_pem = request.private_key_pem()
    cer = apple_sign_csr(apple_ca, csr_of(as_alice, request))

    response = complete(as_alice, request, cer)

    certificate = Certificate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == certificate.get_absolute_url()
    issued = x509.load_der_x509_certificate(cer)
    assert certificate.kind == kind
    assert certificate.name == "Acme Apple Pay"
    assert certificate.merchant_identifier == MERCHANT
    assert certificate.expires_at == issued.not_valid_after_utc
    assert certificate.expiry_source == Certificate.ExpirySource.PARSED
    assert certificate.expires_at - certificate.not_before == APPLE_LIFETIME
    assert certificate.created_by == alice
    assert encryption.decrypt(certificate.private_key_encrypted).decode() == key_pem
    request.refresh_from_db()
    assert not request.is_pending and request.certificate == certificate
    assert request.private_key_encrypted == ""  # the certificate holds the key now
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditEvent.Action.CERTIFICATE_UPLOAD, AuditEvent.Action.REQUEST_COMPLETE} <= actions
    page = as_alice.get(certificate.get_absolute_url()).content.decode()
    assert "CSR created in certmgr" in page and MERCHANT in page


def test_a_pem_cer_is_accepted_too(as_alice, acme, apple_ca):
    request = create_request(as_alice, acme)
    der = apple_sign_csr(apple_ca, csr_of(as_alice, request))
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)

    assert complete(as_alice, request, pem, name="apple_pay.pem").status_code == 302
    assert Certificate.objects.get().merchant_identifier == MERCHANT


def test_a_cer_for_another_key_is_refused(as_alice, acme, apple_ca):
    request = create_request(as_alice, acme)
    other = create_request(as_alice, acme, merchant="merchant.com.acme-tickets.other")
    cer = apple_sign_csr(apple_ca, csr_of(as_alice, other))

    response = complete(as_alice, request, cer)

    assert response.status_code == 200
    assert errors_of(response) == {
        "certificate": ["This certificate was not issued for this request's key."]
    }
    assert not Certificate.objects.exists()
    request.refresh_from_db()
    assert request.is_pending and request.private_key_encrypted


def test_a_cer_apple_issued_for_another_merchant_is_refused(as_alice, acme, apple_ca):
    request = create_request(as_alice, acme)
    cer = apple_sign_csr(
        apple_ca, csr_of(as_alice, request), subject=apple_subject("merchant.com.elsewhere")
    )

    response = complete(as_alice, request, cer)

    assert errors_of(response) == {
        "certificate": [
            "Apple issued this certificate for merchant.com.elsewhere, but this request is "
            f"for {MERCHANT}."
        ]
    }


def test_something_else_than_a_cer_is_refused(as_alice, acme):
    request = create_request(as_alice, acme)

    response = complete(as_alice, request, request.csr_pem.encode(), name="again.csr")

    messages = errors_of(response)["certificate"]
    assert messages[0] == "The file could not be read as a certificate (PEM, DER or PKCS#12)."
    assert "certificate signing request (CSR), not a certificate" in messages[1]


def test_a_request_is_completed_once(as_alice, acme, apple_ca):
    request = create_request(as_alice, acme)
    cer = apple_sign_csr(apple_ca, csr_of(as_alice, request))
    assert complete(as_alice, request, cer).status_code == 302

    again = complete(as_alice, request, cer)

    assert again.status_code == 302
    assert Certificate.objects.count() == 1


def test_a_payment_processing_csr_shows_and_replaces_the_active_certificate(
    as_alice, acme, apple_ca
):
    first_request = create_request(as_alice, acme, name="first")
    complete(as_alice, first_request, apple_sign_csr(apple_ca, csr_of(as_alice, first_request)))
    first = Certificate.objects.get()
    second_request = create_request(as_alice, acme, name="second")

    page = as_alice.get(second_request.get_absolute_url()).content.decode()
    assert "becomes the active payment processing certificate" in page
    assert f'replaces <a href="{first.get_absolute_url()}">first</a>' in page

    response = complete(
        as_alice, second_request, apple_sign_csr(apple_ca, csr_of(as_alice, second_request))
    )
    second = Certificate.objects.get(name="second")
    assert second.replaces == first
    followed = as_alice.get(response["Location"]).content.decode()
    assert f"It replaces “first” as the active payment processing certificate of {MERCHANT}" in (
        followed
    )


# --- the list -------------------------------------------------------------------------------


def test_a_pending_csr_is_listed_as_such_until_completed(as_alice, acme, apple_ca):
    request = create_request(as_alice, acme, name="Apple Pay 2027")

    page = as_alice.get(reverse("certificate_list"))
    html = page.content.decode()
    assert page.context["pending_requests"] == [request]
    assert "CSR pending" in html and f'href="{request.get_absolute_url()}"' in html
    # Filters on status or expiry leave pending requests out; type and search apply.
    list_url = reverse("certificate_list")
    assert as_alice.get(list_url, {"status": "valid"}).context["pending_requests"] == []
    assert as_alice.get(list_url, {"kind": "ssl"}).context["pending_requests"] == []
    kind = as_alice.get(list_url, {"kind": "apple_payment_processing"})
    assert kind.context["pending_requests"] == [request]
    assert as_alice.get(list_url, {"q": "acme-tickets.shop"}).context["pending_requests"] == [
        request
    ]

    complete(as_alice, request, apple_sign_csr(apple_ca, csr_of(as_alice, request)))

    page = as_alice.get(reverse("certificate_list"))
    assert page.context["pending_requests"] == []
    assert "CSR pending" not in page.content.decode()
    row = page.context["rows"][0]
    assert row["certificate"].name == "Apple Pay 2027"
    assert f"{row['certificate'].expires_at:%Y-%m-%d}" in page.content.decode()


def test_the_list_query_count_does_not_depend_on_pending_requests(as_alice, acme, opera):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert as_alice.get(reverse("certificate_list")).status_code == 200
        return len(queries)

    create_request(as_alice, acme, merchant="merchant.com.a0")
    few = count_queries()
    for index in range(5):
        create_request(as_alice, acme, merchant=f"merchant.com.b{index}")
    assert count_queries() == few


# --- who may do what ------------------------------------------------------------------------


def test_another_institution_sees_nothing_of_a_request(client, alice, charlie, acme, apple_ca):
    client.force_login(alice)
    request = create_request(client, acme)
    cer = apple_sign_csr(apple_ca, csr_of(client, request))
    client.force_login(charlie)

    for name in ("certificate_request_detail", "certificate_request_csr"):
        assert client.get(reverse(name, args=[request.pk])).status_code == 404
    assert complete(client, request, cer).status_code == 404
    delete = reverse("certificate_request_delete", args=[request.pk])
    assert client.post(delete).status_code == 404
    assert client.get(reverse("certificate_list")).context["pending_requests"] == []
    response = client.post(
        NEW_URL,
        {
            "institution": acme.pk,
            "kind": "apple_payment_processing",
            "merchant_identifier": MERCHANT,
        },
    )
    assert "institution" in errors_of(response)


def test_a_viewer_reads_and_downloads_but_does_not_write(client, alice, bob, acme, apple_ca):
    client.force_login(alice)
    request = create_request(client, acme)
    cer = apple_sign_csr(apple_ca, csr_of(client, request))
    client.force_login(bob)

    page = client.get(request.get_absolute_url())
    assert page.status_code == 200
    assert "You need the manager role" in page.content.decode()
    assert csr_of(client, request) == request.csr_pem.encode()
    assert client.get(NEW_URL).status_code == 403
    assert complete(client, request, cer).status_code == 403
    delete = reverse("certificate_request_delete", args=[request.pk])
    assert client.post(delete).status_code == 403
    assert CertificateRequest.objects.get().is_pending


def test_a_manager_deletes_a_pending_request(as_alice, acme):
    request = create_request(as_alice, acme)

    response = delete_confirmed(as_alice, reverse("certificate_request_delete", args=[request.pk]))

    assert response.status_code == 302
    assert not CertificateRequest.objects.exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REQUEST_DELETE).count() == 1


# --- expiry alerts --------------------------------------------------------------------------


def test_a_certificate_from_a_csr_is_warned_about_before_it_expires(
    as_alice, alice, acme, apple_ca
):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    request = create_request(as_alice, acme, kind="apple_merchant_identity", name="Merchant ID")
    complete(as_alice, request, apple_sign_csr(apple_ca, csr_of(as_alice, request)))
    certificate = Certificate.objects.get()
    expiry_check()
    assert not Notification.objects.exists()

    with time_machine.travel(certificate.expires_at - timedelta(days=20)):
        as_alice.force_login(alice)  # two years on, the session has long expired
        page = as_alice.get(reverse("certificate_list"))
        assert page.context["rows"][0]["certificate"].status == "expiring"
        expiry_check()
    with time_machine.travel(certificate.expires_at - timedelta(days=2)):
        as_alice.force_login(alice)
        assert as_alice.get(reverse("home")).wsgi_request.certificate_alerts.critical == 1
        expiry_check()

    assert list(Notification.objects.order_by("pk").values_list("threshold", flat=True)) == [
        "30d",
        "3d",
    ]
    assert timezone.now() < certificate.expires_at
