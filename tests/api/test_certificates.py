"""/api/v1/certificates/ and /api/v1/apple-pay/: the certificates window's rules and words
over HTTP (README, "API")."""

from datetime import date, timedelta

import pytest
from django.urls import reverse

from certificates.models import Certificate, CertificateRequest
from certmgr import demo_pki
from core.models import AuditEvent
from saleschannels import services as channel_services
from saleschannels.models import SalesChannel
from tests.apple import apple_sign_csr
from tests.support import upload

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.fixture
def leaf(pki):
    return demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["tickets.acme.example"])


def _upload(api, leaf, pki, **fields):
    data = {
        "name": "Box office",
        "certificate": upload("tickets.crt", leaf.certificate_pem),
        "private_key": upload("tickets.key", leaf.key_pem),
        "chain": upload("chain.pem", pki["intermediate"].certificate_pem),
        **fields,
    }
    return api.post(reverse("api:certificate_list"), data, json=False)


def test_an_upload_stores_the_certificate_and_answers_its_facts_never_its_key(
    acme, acme_api, leaf, pki
):
    response = _upload(acme_api, leaf, pki)

    assert response.status_code == 201, response.content
    body = response.json()
    certificate = Certificate.objects.get(pk=body["id"])
    assert certificate.institution == acme and certificate.has_private_key
    assert body["domains"] == ["tickets.acme.example"]
    assert body["has_private_key"] is True
    assert body["status"] == "valid"
    assert body["fingerprint_sha256"] == certificate.fingerprint_sha256
    assert len(body["chain"]) == 1
    assert b"PRIVATE KEY" not in response.content
    assert leaf.key_pem.decode().splitlines()[1].encode() not in response.content
    event = AuditEvent.objects.get(action=AuditEvent.Action.CERTIFICATE_UPLOAD)
    assert event.actor_token == "acme onboarding"
    assert certificate.created_by is None


def test_an_upload_whose_key_is_another_is_refused_on_the_key_field(acme_api, leaf, pki):
    other = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["tickets.acme.example"])

    response = _upload(acme_api, leaf, pki, private_key=upload("other.key", other.key_pem))

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert list(response.json()["errors"]) == ["private_key"]
    assert not Certificate.objects.exists()


def test_an_unreadable_certificate_asks_for_its_expiry_date(acme_api):
    data = {"name": "Odd", "certificate": upload("odd.crt", b"not a certificate at all")}

    refused = acme_api.post(reverse("api:certificate_list"), data, json=False)
    data["certificate"] = upload("odd.crt", b"not a certificate at all")
    data["expires_at"] = (date.today() + timedelta(days=90)).isoformat()
    stored = acme_api.post(reverse("api:certificate_list"), data, json=False)

    assert refused.status_code == 400
    assert "expires_at" in refused.json()["errors"]
    assert stored.status_code == 201
    assert (stored.json()["status"], stored.json()["expiry_source"]) == ("unverified", "manual")


def test_a_viewer_token_cannot_upload(acme_viewer_api, leaf, pki):
    response = _upload(acme_viewer_api, leaf, pki)
    assert response.status_code == 403
    assert response.json()["detail"] == "You need the manager role to upload certificates."


def test_the_list_takes_the_windows_filters(acme, acme_api, make_certificate):
    make_certificate(acme, name="Fresh", hostnames=("fresh.test",), days_left=80)
    make_certificate(acme, name="Soon", hostnames=("soon.test",), days_left=5)
    url = reverse("api:certificate_list")

    everything = acme_api.get(url).json()["results"]
    critical = acme_api.get(url, {"status": "critical"}).json()["results"]
    searched = acme_api.get(url, {"q": "fresh"}).json()["results"]
    bad_date = acme_api.get(url, {"expires_after": "tomorrow"})

    assert [c["name"] for c in everything] == ["Soon", "Fresh"]  # soonest expiry first
    assert [c["name"] for c in critical] == ["Soon"]
    assert [c["name"] for c in searched] == ["Fresh"]
    assert bad_date.status_code == 400
    assert bad_date.json()["errors"]["expires_after"] == [
        "“tomorrow” is not a date: write it as year-month-day, e.g. 2030-06-30. "
        "This filter is not applied."
    ]


def test_the_chain_downloads_as_pem_without_the_key(acme, acme_api, make_certificate, pki):
    certificate = make_certificate(acme)

    response = acme_api.get(reverse("api:certificate_download", args=[certificate.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pem-file"
    assert response.content.decode() == certificate.public_bundle_pem()
    assert b"PRIVATE KEY" not in response.content


def test_a_certificate_in_use_is_not_deleted_and_the_refusal_names_the_channel(
    acme, alice, acme_api, make_certificate
):
    certificate = make_certificate(acme, hostnames=("tickets.acme.example",))
    channel = channel_services.channel_create(
        institution=acme, name="Box office", hostname="tickets.acme.example", actor=alice
    )
    channel_services.channel_set_ssl_mode(
        channel=channel, mode=SalesChannel.SslMode.UPLOADED, certificate=certificate, actor=alice
    )
    url = reverse("api:certificate_detail", args=[certificate.pk])

    refused = acme_api.delete(url)
    detail = acme_api.get(url).json()

    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "This certificate is used by Box office (tickets.acme.example); choose another "
        "certificate there first."
    )
    assert detail["used_by"] == [
        {"id": channel.pk, "name": "Box office", "hostname": "tickets.acme.example"}
    ]
    channel_services.channel_set_ssl_mode(
        channel=channel, mode=SalesChannel.SslMode.NONE, actor=alice
    )
    assert acme_api.delete(url).status_code == 204
    assert not Certificate.objects.filter(pk=certificate.pk).exists()


def test_another_institutions_certificate_is_not_found(opera, acme_api, make_certificate):
    theirs = make_certificate(opera, name="Opera certificate")
    for response in (
        acme_api.get(reverse("api:certificate_detail", args=[theirs.pk])),
        acme_api.get(reverse("api:certificate_download", args=[theirs.pk])),
        acme_api.delete(reverse("api:certificate_detail", args=[theirs.pk])),
    ):
        assert response.status_code == 404
        assert b"Opera" not in response.content
    assert Certificate.objects.filter(pk=theirs.pk).exists()


def test_the_identity_proof_is_uploaded_and_downloaded_byte_for_byte(acme_api):
    proof = b"apple domain association \x00\x01 bytes"
    response = acme_api.post(
        reverse("api:identity_proof_upload"),
        {
            "name": "Proof",
            "file": upload("apple-developer-merchantid-domain-association", proof),
            "expires_at": (date.today() + timedelta(days=300)).isoformat(),
        },
        json=False,
    )

    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "apple_identity_proof"
    downloaded = acme_api.get(reverse("api:certificate_download", args=[response.json()["id"]]))
    assert downloaded.content == proof


def test_the_csr_flow_creates_the_key_gives_the_csr_and_completes_with_apples_cer(
    acme_api, apple_ca
):
    created = acme_api.post(
        reverse("api:csr_create"),
        {"kind": "apple_payment_processing", "merchant_identifier": "merchant.com.acme.shop"},
    )
    assert created.status_code == 201, created.content
    request_id = created.json()["id"]
    assert created.json()["name"] == "merchant.com.acme.shop (payment processing)"
    csr = acme_api.get(reverse("api:csr_download", args=[request_id]))
    assert csr["Content-Type"] == "application/pkcs10"
    assert b"CERTIFICATE REQUEST" in csr.content and b"PRIVATE KEY" not in csr.content

    completed = acme_api.post(
        reverse("api:csr_complete", args=[request_id]),
        {"certificate": upload("apple_pay.cer", apple_sign_csr(apple_ca, csr.content))},
        json=False,
    )

    assert completed.status_code == 201, completed.content
    assert completed.json()["kind"] == "apple_payment_processing"
    assert completed.json()["has_private_key"] is True
    request = CertificateRequest.objects.get(pk=request_id)
    assert request.certificate_id == completed.json()["id"]
    again = acme_api.get(reverse("api:csr_detail", args=[request_id])).json()
    assert again["pending"] is False
    twice = acme_api.post(
        reverse("api:csr_complete", args=[request_id]),
        {"certificate": upload("apple_pay.cer", apple_sign_csr(apple_ca, csr.content))},
        json=False,
    )
    assert twice.status_code == 409


def test_a_cer_for_another_key_is_refused_in_the_pages_words(acme_api, apple_ca):
    created = acme_api.post(
        reverse("api:csr_create"),
        {"kind": "apple_payment_processing", "merchant_identifier": "merchant.com.acme.shop"},
    ).json()
    other = acme_api.post(
        reverse("api:csr_create"),
        {"kind": "apple_payment_processing", "merchant_identifier": "merchant.com.acme.shop"},
    ).json()
    other_csr = acme_api.get(reverse("api:csr_download", args=[other["id"]])).content

    response = acme_api.post(
        reverse("api:csr_complete", args=[created["id"]]),
        {"certificate": upload("apple_pay.cer", apple_sign_csr(apple_ca, other_csr))},
        json=False,
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "certificate": ["This certificate was not issued for this request's key."]
    }


def test_a_pending_csr_is_deleted(acme_api):
    created = acme_api.post(
        reverse("api:csr_create"),
        {"kind": "apple_merchant_identity", "merchant_identifier": "merchant.com.acme.shop"},
    ).json()

    response = acme_api.delete(reverse("api:csr_detail", args=[created["id"]]))

    assert response.status_code == 204
    assert not CertificateRequest.objects.exists()
