"""Sales-channel pages: list, create, edit, delete and SSL Management, with who may do what."""

import pytest
from django.urls import reverse

from core.models import AuditEvent
from saleschannels.models import SalesChannel

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(acme):
    return SalesChannel.objects.create(
        institution=acme, name="Main shop", hostname="shop.acme.test"
    )


@pytest.fixture
def certificate(acme, make_certificate):
    return make_certificate(acme, name="Acme shop cert", hostnames=["shop.acme.test"])


def ssl_url(channel) -> str:
    return reverse("channel_ssl", args=[channel.pk])


def edge_files(settings) -> set[str]:
    edge = settings.CERTMGR_EDGE_DIR
    return (
        {p.name for p in edge.iterdir() if not p.name.startswith(".")} if edge.exists() else set()
    )


def test_the_list_shows_mode_active_certificate_expiry_status_and_probe(
    client, bob, channel, certificate
):
    channel.ssl_mode = "uploaded"
    channel.certificate = channel.active_certificate = certificate
    channel.probe_status = "mismatch"
    channel.save()
    client.force_login(bob)
    html = client.get(reverse("channel_list")).content.decode()
    for text in (
        "Main shop",
        "shop.acme.test",
        "Uploaded certificate",
        "Acme shop cert",
        certificate.expires_at.strftime("%Y-%m-%d"),
        "badge-valid",
        "Serves another certificate",
    ):
        assert text in html, text


def test_a_manager_creates_a_channel_with_a_normalised_hostname(client, alice, acme):
    client.force_login(alice)
    response = client.post(
        reverse("channel_new"),
        {"institution": acme.pk, "name": "Books", "hostname": "Bücher.Acme.TEST"},
    )
    channel = SalesChannel.objects.get()
    assert response.status_code == 302
    assert channel.hostname == "xn--bcher-kva.acme.test"
    assert channel.ssl_mode == "none"
    assert AuditEvent.objects.filter(action="channel.create", target_id=channel.pk).exists()


@pytest.mark.parametrize(
    ("hostname", "words"),
    [
        ("not a host", "not a valid hostname"),
        ("https://shop.acme.test", "without scheme"),
        ("SHOP.acme.test", "already used"),
    ],
)
def test_it_refuses_a_bad_or_taken_hostname(client, alice, acme, channel, hostname, words):
    client.force_login(alice)
    response = client.post(
        reverse("channel_new"), {"institution": acme.pk, "name": "x", "hostname": hostname}
    )
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors["hostname"])
    assert SalesChannel.objects.count() == 1


def test_a_manager_edits_and_deletes_a_channel(client, alice, channel):
    client.force_login(alice)
    response = client.post(
        reverse("channel_edit", args=[channel.pk]), {"name": "Renamed", "hostname": "www.acme.test"}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.hostname) == ("Renamed", "www.acme.test")
    client.post(reverse("channel_delete", args=[channel.pk]))
    assert not SalesChannel.objects.exists()


def test_a_viewer_sees_channels_but_cannot_change_them(client, bob, acme, channel, certificate):
    client.force_login(bob)
    assert client.get(channel.get_absolute_url()).status_code == 200
    assert client.get(ssl_url(channel)).status_code == 200
    assert client.get(reverse("channel_new")).status_code == 403
    assert client.get(reverse("channel_edit", args=[channel.pk])).status_code == 403
    assert client.post(reverse("channel_delete", args=[channel.pk])).status_code == 403
    response = client.post(ssl_url(channel), {"mode": "uploaded", "certificate": certificate.pk})
    assert response.status_code == 403
    channel.refresh_from_db()
    assert channel.ssl_mode == "none"


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "channel_detail"),
        ("get", "channel_edit"),
        ("post", "channel_edit"),
        ("post", "channel_delete"),
        ("get", "channel_ssl"),
        ("post", "channel_ssl"),
    ],
)
def test_another_institution_gets_404_on_every_channel_url(client, charlie, channel, method, name):
    client.force_login(charlie)
    response = getattr(client, method)(reverse(name, args=[channel.pk]))
    assert response.status_code == 404
    assert SalesChannel.objects.filter(pk=channel.pk, name="Main shop").exists()


def test_another_institution_does_not_see_the_channel_in_the_list(client, charlie, channel):
    client.force_login(charlie)
    assert "shop.acme.test" not in client.get(reverse("channel_list")).content.decode()


def test_the_ssl_page_lists_only_usable_certificates(
    client, alice, acme, opera, channel, certificate, make_certificate
):
    wildcard = make_certificate(acme, name="Wildcard", hostnames=["*.acme.test"])
    make_certificate(acme, name="Other host", hostnames=["other.acme.test"])
    make_certificate(acme, name="Expired", hostnames=["shop.acme.test"], days_left=-1)
    make_certificate(acme, name="Keyless", hostnames=["shop.acme.test"], with_key=False)
    make_certificate(opera, name="Opera's", hostnames=["shop.acme.test"])
    client.force_login(alice)
    form = client.get(ssl_url(channel)).context["form"]
    assert {c.name for c in form.choices} == {certificate.name, wildcard.name}


def test_binding_an_uploaded_certificate_deploys_it(client, alice, channel, certificate, settings):
    client.force_login(alice)
    response = client.post(ssl_url(channel), {"mode": "uploaded", "certificate": certificate.pk})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.ssl_mode == "uploaded"
    assert channel.certificate == certificate
    assert channel.active_certificate == certificate
    assert edge_files(settings) == {"shop.acme.test.crt", "shop.acme.test.key"}
    crt = (settings.CERTMGR_EDGE_DIR / "shop.acme.test.crt").read_text()
    assert crt == certificate.certificate_pem + certificate.chain_pem
    event = AuditEvent.objects.get(action="channel.ssl_mode")
    assert event.details["mode"] == "uploaded" and event.actor == alice
    # The certificate window now says where it is used.
    assert "shop.acme.test" in client.get(certificate.get_absolute_url()).content.decode()


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing", "Choose the uploaded certificate"),
        ("unknown", "no such certificate"),
        ("other_institution", "no such certificate"),
        ("expired", "expired on"),
        ("keyless", "no private key"),
        ("other_host", "not for shop.acme.test"),
        ("too_deep_wildcard", "not for shop.acme.test"),
    ],
)
def test_each_refused_choice_names_the_reason(
    client, alice, acme, opera, channel, make_certificate, settings, case, words
):
    data = {"mode": "uploaded"}
    if case == "unknown":
        data["certificate"] = 999999
    elif case == "other_institution":
        data["certificate"] = make_certificate(opera, hostnames=["shop.acme.test"]).pk
    elif case == "expired":
        data["certificate"] = make_certificate(acme, hostnames=["shop.acme.test"], days_left=-1).pk
    elif case == "keyless":
        data["certificate"] = make_certificate(
            acme, hostnames=["shop.acme.test"], with_key=False
        ).pk
    elif case == "other_host":
        data["certificate"] = make_certificate(acme, hostnames=["www.acme.test"]).pk
    elif case == "too_deep_wildcard":
        data["certificate"] = make_certificate(acme, hostnames=["*.shop.acme.test"]).pk
    client.force_login(alice)
    response = client.post(ssl_url(channel), data)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["certificate"])
    assert words in errors, errors
    channel.refresh_from_db()
    assert channel.ssl_mode == "none" and channel.active_certificate is None
    assert edge_files(settings) == set()


def test_managed_mode_is_pending_and_keeps_the_current_certificate_served(
    client, alice, channel, certificate, settings
):
    client.force_login(alice)
    client.post(ssl_url(channel), {"mode": "uploaded", "certificate": certificate.pk})
    response = client.post(ssl_url(channel), {"mode": "managed"}, follow=True)
    channel.refresh_from_db()
    assert channel.ssl_mode == "managed"
    assert channel.certificate is None
    assert channel.active_certificate == certificate
    assert edge_files(settings) == {"shop.acme.test.crt", "shop.acme.test.key"}
    assert "pending" in response.content.decode()


def test_mode_none_removes_the_files_from_the_edge(client, alice, channel, certificate, settings):
    client.force_login(alice)
    client.post(ssl_url(channel), {"mode": "uploaded", "certificate": certificate.pk})
    client.post(ssl_url(channel), {"mode": "none"})
    channel.refresh_from_db()
    assert channel.active_certificate is None
    assert edge_files(settings) == set()
    # No longer in use: the certificate may now be deleted.
    client.post(reverse("certificate_delete", args=[certificate.pk]))
    assert not type(certificate).objects.filter(pk=certificate.pk).exists()


def test_deleting_a_channel_removes_its_edge_files(client, alice, channel, certificate, settings):
    client.force_login(alice)
    client.post(ssl_url(channel), {"mode": "uploaded", "certificate": certificate.pk})
    client.post(reverse("channel_delete", args=[channel.pk]))
    assert edge_files(settings) == set()


def test_a_probe_problem_counts_in_the_banner(client, alice, channel):
    channel.probe_status = "failed"
    channel.save()
    client.force_login(alice)
    html = client.get(reverse("certificate_list")).content.decode()
    assert 'data-level="expired" data-count="1"' in html
    assert "1 sales channel serves a wrong, expired or no certificate, or cannot renew its" in html


def test_renewal_failures_show_on_the_page_and_count_in_the_banner_from_the_second(
    client, alice, acme
):
    from datetime import timedelta

    from django.utils import timezone

    channel = SalesChannel.objects.create(
        institution=acme,
        name="Managed",
        hostname="m.acme.test",
        ssl_mode="managed",
        renewal_failures=1,
        renewal_last_error="The CA could not validate m.acme.test: connection refused",
        renewal_next_attempt_at=timezone.now() + timedelta(minutes=10),
    )
    client.force_login(alice)
    page = client.get(channel.get_absolute_url()).content.decode()
    assert "1 consecutive failure: The CA could not validate m.acme.test" in page
    assert "Next attempt" in page
    assert 'class="cert-alert"' not in page

    SalesChannel.objects.filter(pk=channel.pk).update(renewal_failures=2)
    page = client.get(channel.get_absolute_url()).content.decode()
    assert 'class="cert-alert" data-level="expired" data-count="1"' in page
    assert "has failed 2 times in a row" in page
    assert f'action="/saleschannels/{channel.pk}/renew/"' in page
