"""Words of the certificate pages (issue 17): the identity proof's page, the Apple Pay and
SSL pages of a sales channel, and the same certificate uploaded twice."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from certificates import services
from certificates.models import Certificate
from certmgr import demo_pki
from saleschannels.models import SalesChannel
from tests.support import page_html, upload


def proof_upload(institution, actor, *, name="Proof", days_left=365):
    return services.identity_proof_upload(
        institution=institution,
        name=name,
        content=b"apple proof\n",
        expires_at=timezone.now() + timedelta(days=days_left),
        actor=actor,
    )


def shop(institution, hostname="shop.acme.test", **fields) -> SalesChannel:
    return SalesChannel.objects.create(
        institution=institution, name=hostname.split(".")[0], hostname=hostname, **fields
    )


def test_an_identity_proofs_page_says_where_it_is_served_and_nothing_contrary(
    as_alice, acme, alice
):
    proof = proof_upload(acme, alice)
    shop(acme, apple_pay_enabled=True)
    page = page_html(as_alice.get(proof.get_absolute_url()))
    assert "Served on" in page and "shop.acme.test" in page
    assert "Used by" not in page and "No sales channel" not in page
    assert "Identity proof uploaded by alice" in page
    assert "Certificate uploaded" not in page


def test_channels_naming_a_proof_without_serving_it_are_said_so(as_alice, acme, alice):
    proof = proof_upload(acme, alice)
    shop(acme, apple_pay_enabled=False, apple_identity_proof=proof)
    page = page_html(as_alice.get(proof.get_absolute_url()))
    assert "No sales channel serves it now." in page
    assert "Named but not served by" in page
    assert "Apple Pay is off on this channel." in page


def test_a_certificates_history_still_says_certificate_uploaded(
    as_alice, acme, alice, make_certificate
):
    certificate = make_certificate(acme, actor=alice)
    page = page_html(as_alice.get(certificate.get_absolute_url()))
    assert "Certificate uploaded by alice" in page
    assert "Used by</dt><dd>No sales channel</dd>" in page


def test_the_apple_pay_page_offers_an_upload_only_without_any_proof(as_alice, acme, alice):
    channel = shop(acme)
    url = reverse("channel_apple_pay", args=[channel.pk])
    assert "No identity proof yet?" in page_html(as_alice.get(url))
    proof_upload(acme, alice)
    assert "No identity proof yet?" not in page_html(as_alice.get(url))


@pytest.fixture
def as_bob(client, bob):
    client.force_login(bob)
    return client


def test_a_viewer_reads_which_certificate_the_channel_uses(as_bob, acme, make_certificate):
    certificate = make_certificate(acme, name="Shop 2030", hostnames=["shop.acme.test"])
    channel = shop(
        acme, ssl_mode="uploaded", certificate=certificate, active_certificate=certificate
    )
    page = page_html(as_bob.get(reverse("channel_ssl", args=[channel.pk])))
    link = f'<a href="{certificate.get_absolute_url()}">Shop 2030</a>'
    assert f"SSL management: Uploaded certificate: {link} (expires " in page
    assert "Uploaded certificate ." not in page
    assert "You need the manager role to change it." in page

    newer = make_certificate(acme, name="Shop 2031", hostnames=["shop.acme.test"])
    SalesChannel.objects.filter(pk=channel.pk).update(certificate=newer)
    page = page_html(as_bob.get(reverse("channel_ssl", args=[channel.pk])))
    assert f'<a href="{newer.get_absolute_url()}">Shop 2031</a>' in page
    assert f"The edge serves {link}" in page

    SalesChannel.objects.filter(pk=channel.pk).update(
        ssl_mode="none", certificate=None, active_certificate=None
    )
    page = page_html(as_bob.get(reverse("channel_ssl", args=[channel.pk])))
    assert "SSL management: No SSL. The edge serves no certificate for shop.acme.test." in page


def test_the_same_certificate_uploaded_twice_is_stored_with_a_warning_linking_the_first(
    as_alice, acme, opera, charlie, client, pki
):
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.acme.test"])

    def post(client, institution, name):
        return client.post(
            reverse("certificate_upload_ssl"),
            {
                "institution": institution.pk,
                "name": name,
                "certificate": upload("domain.crt", leaf.certificate_pem),
                "private_key": upload("domain.key", leaf.key_pem),
                "chain": upload("chain.crt", pki["intermediate"].certificate_pem),
            },
            follow=True,
        )

    first_page = page_html(post(as_alice, acme, "First"))
    assert "same SHA-256 fingerprint" not in first_page
    second_page = page_html(post(as_alice, acme, "Second"))
    first, second = Certificate.objects.order_by("pk")
    assert second.name == "Second"  # stored
    assert (
        "The same certificate (same SHA-256 fingerprint) was already stored as "
        f'<a href="{first.get_absolute_url()}">“First”</a> on '
        f"{first.created_at:%Y-%m-%d}. Both are kept: delete the one you do not need."
    ) in second_page
    assert 'class="message warning"' in second_page

    # Another institution's copy is none of Acme's business, nor Acme's of the Opera's.
    client.force_login(charlie)
    assert "same SHA-256 fingerprint" not in page_html(post(client, opera, "Opera's"))
