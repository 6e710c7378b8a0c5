"""Detail, download and delete of one certificate, and who may reach them."""

import pytest
from django.urls import reverse

from certificates.models import Certificate
from core.models import AuditEvent
from saleschannels.models import SalesChannel
from tests.support import delete_confirmed


@pytest.fixture
def certificate(acme, alice, make_certificate):
    return make_certificate(acme, name="Main shop", hostnames=["shop.acme.test"], actor=alice)


def test_it_shows_every_parsed_fact(client, alice, certificate):
    client.force_login(alice)
    html = client.get(certificate.get_absolute_url()).content.decode()
    for text in (
        certificate.subject,
        certificate.issuer,
        certificate.serial_number,
        certificate.fingerprint_sha256,
        "EC P-256",
        "sha256",
        "shop.acme.test",
        "Test Intermediate CA",
        "Certificate uploaded",
    ):
        assert text in html, text
    assert "PRIVATE KEY" not in html


def test_it_downloads_the_certificate_and_chain_but_never_the_key(client, bob, certificate):
    client.force_login(bob)
    response = client.get(reverse("certificate_download", args=[certificate.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pem-file"
    assert body == certificate.certificate_pem + certificate.chain_pem
    assert body.count("BEGIN CERTIFICATE") == 2
    assert "PRIVATE KEY" not in body


def test_a_manager_deletes_a_certificate_and_it_is_audited(client, alice, certificate):
    client.force_login(alice)
    response = delete_confirmed(client, reverse("certificate_delete", args=[certificate.pk]))
    assert response.status_code == 302
    assert not Certificate.objects.exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.CERTIFICATE_DELETE)
    assert event.actor == alice and event.target_id == certificate.pk


def test_it_refuses_to_delete_a_certificate_a_sales_channel_uses(client, alice, acme, certificate):
    SalesChannel.objects.create(
        institution=acme,
        name="Main",
        hostname="shop.acme.test",
        ssl_mode="uploaded",
        certificate=certificate,
        active_certificate=certificate,
    )
    client.force_login(alice)
    response = client.post(reverse("certificate_delete", args=[certificate.pk]), follow=True)
    assert Certificate.objects.filter(pk=certificate.pk).exists()
    assert "used by Main (shop.acme.test)" in response.content.decode()


def test_delete_by_get_only_shows_the_confirmation_page(client, alice, certificate):
    client.force_login(alice)
    assert client.get(reverse("certificate_delete", args=[certificate.pk])).status_code == 200
    assert Certificate.objects.filter(pk=certificate.pk).exists()


def test_a_viewer_cannot_delete(client, bob, certificate):
    client.force_login(bob)
    response = client.post(reverse("certificate_delete", args=[certificate.pk]))
    assert response.status_code == 403
    assert Certificate.objects.filter(pk=certificate.pk).exists()


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "certificate_detail"),
        ("get", "certificate_download"),
        ("post", "certificate_delete"),
    ],
)
def test_another_institution_gets_404_on_every_certificate_url(
    client, charlie, certificate, method, name
):
    client.force_login(charlie)
    response = getattr(client, method)(reverse(name, args=[certificate.pk]))
    assert response.status_code == 404
    assert Certificate.objects.filter(pk=certificate.pk).exists()


def test_staff_see_every_institution(client, sam, alice, opera, certificate, make_certificate):
    opera_certificate = make_certificate(opera, name="Box office", hostnames=["tickets.opera.test"])
    institution_of = {certificate: "Acme Tickets", opera_certificate: "Opera House"}
    # Alice sees only her institution's: the list below is not everything to everyone.
    client.force_login(alice)
    alice_list = client.get(reverse("certificate_list"))
    assert [row["certificate"] for row in alice_list.context["rows"]] == [certificate]
    assert "Box office" not in alice_list.content.decode()

    client.force_login(sam)
    listing = client.get(reverse("certificate_list"))

    assert {row["certificate"] for row in listing.context["rows"]} == set(institution_of)
    html = listing.content.decode()
    for shown, institution_name in institution_of.items():
        assert f'<a href="{shown.get_absolute_url()}">{shown.name}</a>' in html
        assert f'<td data-label="Institution">{institution_name}</td>' in html  # not the filter's
        detail = client.get(shown.get_absolute_url())
        assert detail.status_code == 200
        page = detail.content.decode()
        assert f"<dt>Institution</dt><dd>{institution_name}</dd>" in page
        for text in (shown.name, shown.fingerprint_sha256, shown.domains[0]):
            assert text in page, (shown.name, text)
