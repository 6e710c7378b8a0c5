"""Deleting a certificate, an Apple Pay identity proof or a key-and-CSR request: a page first
says what it will do (the channels keeping it, the hostnames whose Apple Pay file it is and
which proof takes over), and only a POST confirming that very impact deletes, with an audit
row. A served proof with none to take over is not deleted."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from certificates import services
from certificates.apple import WELL_KNOWN_PATH
from certificates.deletion import certificate_deletion
from certificates.models import Certificate, CertificateRequest
from core.models import AuditEvent
from saleschannels import services as channel_services
from tests.support import confirm_field, delete_confirmed, page_html

pytestmark = pytest.mark.django_db

SHOP = "shop.acme.test"


def delete_url(certificate) -> str:
    return reverse("certificate_delete", args=[certificate.pk])


def proof_upload(institution, *, name: str, content: bytes, days_left: int = 365):
    return services.identity_proof_upload(
        institution=institution,
        name=name,
        content=content,
        expires_at=timezone.now() + timedelta(days=days_left),
        actor=None,
    )


def apple_pay_shop(institution, actor, hostname=SHOP, proof=None):
    """A channel with Apple Pay on, serving the institution's latest valid proof (or `proof`)."""
    channel = channel_services.channel_create(
        institution=institution, name=f"Shop {hostname}", hostname=hostname, actor=actor
    )
    # The file is served on a verified hostname only (README, "Onboarding a hostname").
    channel_services.channel_hostname_verified_mark(channel=channel, method="txt", actor=None)
    return channel_services.channel_set_apple_pay(
        channel=channel, enabled=True, identity_proof=proof, actor=actor
    )


def apple_file(client, hostname=SHOP):
    return client.get(WELL_KNOWN_PATH, HTTP_HOST=hostname)


def deletions():
    return AuditEvent.objects.filter(action=AuditEvent.Action.CERTIFICATE_DELETE)


@pytest.fixture
def certificate(acme, alice, make_certificate):
    return make_certificate(acme, name="Main shop", hostnames=[SHOP], actor=alice)


# --- the confirmation ----------------------------------------------------------------------


def test_one_click_deletes_nothing_and_shows_what_it_would_do(as_alice, certificate):
    """The old one-click form (a POST with no confirmation) gets the page, not a delete."""
    response = as_alice.post(delete_url(certificate))

    assert response.status_code == 200
    html = page_html(response)
    assert "Delete Main shop?" in html
    assert "No sales channel: none loses its certificate." in html
    assert "and its private key will be deleted for good" in html
    assert Certificate.objects.filter(pk=certificate.pk).exists()
    assert not deletions().exists()


def test_a_confirmation_for_another_impact_shows_the_page_again(as_alice, certificate):
    response = as_alice.post(delete_url(certificate), {"confirm": "0" * 32})

    assert response.status_code == 200
    assert "has changed since the page was shown" in page_html(response)
    assert Certificate.objects.filter(pk=certificate.pk).exists()


def test_a_manager_deletes_once_confirmed_and_it_is_audited(as_alice, alice, certificate):
    response = delete_confirmed(as_alice, delete_url(certificate))

    assert response.status_code == 302 and response["Location"] == reverse("certificate_list")
    assert not Certificate.objects.filter(pk=certificate.pk).exists()
    event = deletions().get()
    assert (event.actor, event.target_id, event.institution_id) == (
        alice,
        certificate.pk,
        certificate.institution_id,
    )
    assert event.details["fingerprint_sha256"] == certificate.fingerprint_sha256
    assert event.details["kind"] == "ssl"


def test_the_page_names_the_channels_using_it_and_offers_no_delete(
    as_alice, acme, alice, certificate
):
    channel = channel_services.channel_create(
        institution=acme, name="Main", hostname=SHOP, actor=alice
    )
    channel_services.channel_set_ssl_mode(
        channel=channel, mode="uploaded", certificate=certificate, actor=alice
    )

    page = as_alice.get(delete_url(certificate))
    html = page_html(page)
    assert f'<a href="{channel.get_absolute_url()}">Main ({SHOP})</a>' in html
    assert "This certificate is used by Main (shop.acme.test); choose another" in html
    assert 'name="confirm"' not in html
    # Even a confirmation of the impact as it stands is refused.
    token = certificate_deletion(certificate, timezone.now()).token
    refused = as_alice.post(delete_url(certificate), {"confirm": token})
    assert refused.status_code == 200
    assert Certificate.objects.filter(pk=certificate.pk).exists()
    assert not deletions().exists()


def test_only_managers_of_its_institution_reach_the_page(client, bob, charlie, certificate):
    client.force_login(bob)
    assert client.get(delete_url(certificate)).status_code == 403
    assert client.post(delete_url(certificate), {"confirm": "x"}).status_code == 403
    client.force_login(charlie)
    assert client.get(delete_url(certificate)).status_code == 404
    assert client.post(delete_url(certificate), {"confirm": "x"}).status_code == 404
    assert Certificate.objects.filter(pk=certificate.pk).exists()


# --- identity proofs ----------------------------------------------------------------------


def test_the_served_proof_is_not_deleted_while_none_would_take_over(client, as_alice, acme, alice):
    proof = proof_upload(acme, name="The only proof", content=b"only\n")
    apple_pay_shop(acme, alice)

    page = as_alice.get(delete_url(proof))

    html = page_html(page)
    assert f"The Apple Pay file of {SHOP}" in html
    assert "No other valid identity proof would take over" in html
    assert "Upload the new file first, or turn Apple Pay off on those sales channels." in html
    assert 'name="confirm"' not in html
    token = certificate_deletion(proof, timezone.now()).token
    as_alice.post(delete_url(proof), {"confirm": token})
    assert Certificate.objects.filter(pk=proof.pk).exists()
    assert apple_file(client).content == b"only\n"
    with pytest.raises(services.IdentityProofServedError, match=SHOP):
        services.certificate_delete(certificate=proof, actor=alice)


def test_an_expired_proof_does_not_take_over(as_alice, acme, alice):
    proof_upload(acme, name="Expired", content=b"old\n", days_left=-1)
    proof = proof_upload(acme, name="Served", content=b"served\n")
    apple_pay_shop(acme, alice)

    page = as_alice.get(delete_url(proof))

    assert "No other valid identity proof would take over" in page_html(page)
    assert 'name="confirm"' not in page_html(page)


def test_deleting_the_served_proof_says_which_takes_over_and_it_does(client, as_alice, acme, alice):
    older = proof_upload(acme, name="Older proof", content=b"older\n")
    latest = proof_upload(acme, name="Latest proof", content=b"latest\n")
    apple_pay_shop(acme, alice)
    apple_pay_shop(acme, alice, hostname="www.acme.test")
    assert apple_file(client).content == b"latest\n"

    page = as_alice.get(delete_url(latest))
    html = page_html(page)
    assert f"The Apple Pay file of {SHOP}, www.acme.test" in html
    assert f'<a href="{older.get_absolute_url()}">Older proof</a>' in html
    assert "is served there instead" in html
    as_alice.post(delete_url(latest), confirm_field(page))

    assert not Certificate.objects.filter(pk=latest.pk).exists()
    assert apple_file(client).content == b"older\n"
    assert apple_file(client, "www.acme.test").content == b"older\n"
    event = deletions().get()
    assert event.details["apple_pay_hostnames"] == [SHOP, "www.acme.test"]
    assert event.details["identity_proof_taking_over"] == older.pk


def test_a_confirmation_made_before_the_impact_changed_deletes_nothing(
    as_alice, client, acme, alice
):
    """Shown while the proof was served with another to take over; by the time the form is
    sent, the other one is gone: the page comes back, saying so, and the file stays."""
    older = proof_upload(acme, name="Older proof", content=b"older\n")
    latest = proof_upload(acme, name="Latest proof", content=b"latest\n")
    apple_pay_shop(acme, alice)
    page = as_alice.get(delete_url(latest))
    Certificate.objects.filter(pk=older.pk).delete()

    response = as_alice.post(delete_url(latest), confirm_field(page))

    assert response.status_code == 200
    html = page_html(response)
    assert "has changed since the page was shown" in html
    assert "No other valid identity proof would take over" in html
    assert apple_file(client).content == b"latest\n"


def test_a_proof_no_channel_serves_is_deleted_without_ado(as_alice, acme, alice):
    proof_upload(acme, name="Latest proof", content=b"latest\n")
    older = proof_upload(acme, name="Not served", content=b"older\n")
    Certificate.objects.filter(pk=older.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )  # the other is the latest
    apple_pay_shop(acme, alice)

    page = as_alice.get(delete_url(older))
    assert "No sales channel serves it as its Apple Pay file." in page_html(page)
    assert delete_confirmed(as_alice, delete_url(older)).status_code == 302
    assert not Certificate.objects.filter(pk=older.pk).exists()


# --- key-and-CSR requests -------------------------------------------------------------------


@pytest.fixture
def pending(acme, alice):
    return services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_PAYMENT_PROCESSING,
        merchant_identifier="merchant.test.acme",
        name="Waiting for Apple",
        actor=alice,
    )


def request_delete_url(request) -> str:
    return reverse("certificate_request_delete", args=[request.pk])


def test_one_click_keeps_a_pending_request_and_says_its_key_would_go(as_alice, pending):
    response = as_alice.post(request_delete_url(pending))

    assert response.status_code == 200
    html = page_html(response)
    assert "Delete the CSR Waiting for Apple?" in html
    assert "The private key certmgr made for this CSR is destroyed with it" in html
    assert CertificateRequest.objects.filter(pk=pending.pk).exists()


def test_a_confirmed_request_delete_is_audited(as_alice, alice, pending):
    assert delete_confirmed(as_alice, request_delete_url(pending)).status_code == 302
    assert not CertificateRequest.objects.exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.REQUEST_DELETE)
    assert (event.actor, event.target_id) == (alice, pending.pk)


def test_only_managers_of_its_institution_reach_the_request_page(client, bob, charlie, pending):
    client.force_login(bob)
    assert client.get(request_delete_url(pending)).status_code == 403
    client.force_login(charlie)
    assert client.get(request_delete_url(pending)).status_code == 404
    assert CertificateRequest.objects.filter(pk=pending.pk).exists()


def test_a_request_completed_meanwhile_is_not_deleted(as_alice, alice, pending):
    """The page was shown while it was pending; the service finds it completed under lock."""
    page = as_alice.get(request_delete_url(pending))
    pending.refresh_from_db()
    CertificateRequest.objects.filter(pk=pending.pk).update(completed_at=timezone.now())

    with pytest.raises(services.RequestCompletedError):
        services.certificate_request_delete(request=pending, actor=alice)
    response = as_alice.post(request_delete_url(pending), confirm_field(page), follow=True)
    assert "This request is completed; delete its certificate instead." in (page_html(response))
    assert CertificateRequest.objects.filter(pk=pending.pk).exists()
