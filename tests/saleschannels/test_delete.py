"""Deleting a sales channel: a page first names its hostname, the certificate that stops being
served there at once and the Apple Pay file that goes with it; only a POST confirming that
very impact deletes the channel (its edge files go), with an audit row saying what stopped."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from certificates import services as certificate_services
from certificates.apple import WELL_KNOWN_PATH
from core.models import AuditEvent
from saleschannels import services
from saleschannels.models import SalesChannel
from tests.support import confirm_field, delete_confirmed, page_html

pytestmark = pytest.mark.django_db

SHOP = "shop.acme.test"


@pytest.fixture
def shop(acme, alice, make_certificate):
    """Acme's shop: an uploaded certificate on the edge, Apple Pay on."""
    certificate = make_certificate(acme, name="Shop certificate", hostnames=[SHOP])
    certificate_services.identity_proof_upload(
        institution=acme,
        name="Acme domain file",
        content=b"acme proof\n",
        expires_at=timezone.now() + timedelta(days=365),
        actor=alice,
    )
    channel = services.channel_create(institution=acme, name="Shop", hostname=SHOP, actor=alice)
    services.channel_set_ssl_mode(
        channel=channel, mode="uploaded", certificate=certificate, actor=alice
    )
    services.channel_hostname_verified_mark(channel=channel, method="txt", actor=None)
    return services.channel_set_apple_pay(
        channel=channel, enabled=True, identity_proof=None, actor=alice
    )


def delete_url(channel) -> str:
    return reverse("channel_delete", args=[channel.pk])


def edge_files(settings) -> set[str]:
    edge = settings.CERTMGR_EDGE_DIR
    return {p.name for p in edge.iterdir() if not p.name.startswith(".")}


def test_one_click_deletes_nothing_and_names_what_would_stop(as_alice, client, shop, settings):
    response = as_alice.post(delete_url(shop))

    assert response.status_code == 200
    html = page_html(response)
    assert f"https://{SHOP}/ stops being served with" in html
    assert ">Shop certificate</a> at once" in html
    assert f"https://{SHOP}{WELL_KNOWN_PATH} stops serving the Apple Pay file" in html
    assert ">Acme domain file</a>" in html
    assert SalesChannel.objects.filter(pk=shop.pk).exists()
    assert edge_files(settings) == {f"{SHOP}.crt", f"{SHOP}.key"}
    assert client.get(WELL_KNOWN_PATH, HTTP_HOST=SHOP).content == b"acme proof\n"
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CHANNEL_DELETE).exists()


def test_a_channel_serving_nothing_says_so(as_alice, acme, alice):
    bare = services.channel_create(institution=acme, name="Bare", hostname=SHOP, actor=alice)

    html = page_html(as_alice.get(delete_url(bare)))

    assert "The edge serves no certificate for this hostname now." in html
    assert "Not enabled: no Apple Pay file is served." in html


def test_a_confirmed_delete_removes_the_edge_files_and_is_audited(as_alice, alice, shop, settings):
    served, proof = shop.active_certificate_id, shop.apple_identity_proof_id

    response = delete_confirmed(as_alice, delete_url(shop))

    assert response.status_code == 302 and response["Location"] == reverse("channel_list")
    assert not SalesChannel.objects.filter(pk=shop.pk).exists()
    assert edge_files(settings) == set()
    event = AuditEvent.objects.get(action=AuditEvent.Action.CHANNEL_DELETE)
    assert (event.actor, event.target_id) == (alice, shop.pk)
    assert event.details["hostname"] == SHOP
    assert event.details["ssl_mode"] == "uploaded"
    assert event.details["served_certificate"] == served
    assert proof is None  # it names none: the latest valid one is served
    assert event.details["apple_pay_identity_proof"] is not None


def test_a_confirmation_made_before_the_impact_changed_deletes_nothing(
    as_alice, alice, shop, settings
):
    page = as_alice.get(delete_url(shop))
    services.channel_set_apple_pay(channel=shop, enabled=False, identity_proof=None, actor=alice)

    response = as_alice.post(delete_url(shop), confirm_field(page))

    assert response.status_code == 200
    assert "has changed since the page was shown" in page_html(response)
    assert SalesChannel.objects.filter(pk=shop.pk).exists()
    assert edge_files(settings) == {f"{SHOP}.crt", f"{SHOP}.key"}


def test_only_managers_of_its_institution_reach_the_page(client, bob, charlie, shop, settings):
    for user, status in ((bob, 403), (charlie, 404)):
        client.force_login(user)
        assert client.get(delete_url(shop)).status_code == status
        assert client.post(delete_url(shop), {"confirm": "x"}).status_code == status
    assert SalesChannel.objects.filter(pk=shop.pk).exists()
    assert edge_files(settings) == {f"{SHOP}.crt", f"{SHOP}.key"}
