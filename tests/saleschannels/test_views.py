"""Sales-channel pages: list, create, edit, delete and SSL Management, with who may do what."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from certificates import services as certificate_services
from certificates.bundle import certificate_bundle_parse
from certificates.models import Certificate
from certmgr import demo_pki
from core.models import AuditEvent
from saleschannels.forms import ChannelForm
from saleschannels.models import SalesChannel
from tests.support import delete_confirmed, page_html

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
    html = page_html(client.get(reverse("channel_list")))
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
    delete_confirmed(client, reverse("channel_delete", args=[channel.pk]))
    assert not SalesChannel.objects.exists()


def test_an_idn_is_edited_in_unicode_and_stored_in_ascii_again(client, alice, channel):
    SalesChannel.objects.filter(pk=channel.pk).update(hostname="shop.xn--bcher-kva.example")
    client.force_login(alice)
    url = reverse("channel_edit", args=[channel.pk])
    assert client.get(url).context["form"]["hostname"].value() == "shop.bücher.example"
    response = client.post(url, {"name": "Renamed", "hostname": "shop.bücher.example"})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.hostname == "shop.xn--bcher-kva.example"


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
    assert "shop.acme.test" not in page_html(client.get(reverse("channel_list")))


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
    assert "shop.acme.test" in page_html(client.get(certificate.get_absolute_url()))


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
    assert "pending" in page_html(response)


def test_mode_none_removes_the_files_from_the_edge(client, alice, channel, certificate, settings):
    client.force_login(alice)
    client.post(ssl_url(channel), {"mode": "uploaded", "certificate": certificate.pk})
    client.post(ssl_url(channel), {"mode": "none"})
    channel.refresh_from_db()
    assert channel.active_certificate is None
    assert edge_files(settings) == set()
    # No longer in use: the certificate may now be deleted.
    delete_confirmed(client, reverse("certificate_delete", args=[certificate.pk]))
    assert not type(certificate).objects.filter(pk=certificate.pk).exists()


def test_deleting_a_channel_removes_its_edge_files(client, alice, channel, certificate, settings):
    client.force_login(alice)
    client.post(ssl_url(channel), {"mode": "uploaded", "certificate": certificate.pk})
    delete_confirmed(client, reverse("channel_delete", args=[channel.pk]))
    assert edge_files(settings) == set()


def test_a_probe_problem_counts_in_the_banner(client, alice, channel):
    channel.probe_status = "failed"
    channel.save()
    client.force_login(alice)
    html = page_html(client.get(reverse("certificate_list")))
    assert 'data-level="expired" data-count="1"' in html
    assert "1 sales channel serves a wrong, expired or no certificate, or cannot renew its" in html


def test_renewal_failures_show_on_the_page_and_count_in_the_banner_from_the_second(
    client, alice, acme
):
    """The status says what failed in plain words and what to do; the raw error stays in the
    log and the admin (README, "Onboarding a hostname")."""
    from datetime import timedelta

    from django.utils import timezone

    raw = "HTTPSConnectionPool(host='m.acme.test'): Max retries exceeded (NameResolutionError)"
    channel = SalesChannel.objects.create(
        institution=acme,
        name="Managed",
        hostname="m.acme.test",
        ssl_mode="managed",
        hostname_verified_at=timezone.now(),
        renewal_failures=1,
        renewal_last_error=raw,
        renewal_next_attempt_at=timezone.now() + timedelta(minutes=10),
        status="renewal_failing",
        status_reason="acme_connection",
        status_params={"ca": "Let's Encrypt"},
        status_next_attempt_at=timezone.now() + timedelta(minutes=10),
    )
    client.force_login(alice)
    page = page_html(client.get(channel.get_absolute_url()))
    assert "1 consecutive failure." in page
    assert "Renewal failing" in page
    assert (
        escape("The CA (Let's Encrypt) could not connect to the hostname to validate it.") in page
    )
    assert escape("Check that port 80 of the hostname reaches the platform's edge.") in page
    assert "Next attempt" in page
    assert "Max retries" not in page and "NameResolutionError" not in page
    assert 'class="cert-alert"' not in page

    SalesChannel.objects.filter(pk=channel.pk).update(renewal_failures=2)
    page = page_html(client.get(channel.get_absolute_url()))
    assert 'class="cert-alert" data-level="expired" data-count="1"' in page
    assert "2 consecutive failures." in page
    assert f'action="/saleschannels/{channel.pk}/renew/"' in page


# --- hostnames a channel may not claim ------------------------------------------------------

# The longest hostname accepted (its "<hostname>.key" is 255 bytes, a file name's limit), and
# valid DNS names one and two characters longer.
LONGEST = ".".join(["a" * 63] * 3 + ["b" * 54, "test"])
TOO_LONG = ".".join(["a" * 63] * 3 + ["b" * 55, "test"])
OVERLONG = ".".join(["a" * 63] * 3 + ["b" * 56, "test"])


def post_new(client, acme, hostname):
    return client.post(
        reverse("channel_new"), {"institution": acme.pk, "name": "x", "hostname": hostname}
    )


def post_edit(client, channel, hostname):
    return client.post(
        reverse("channel_edit", args=[channel.pk]), {"name": "Main shop", "hostname": hostname}
    )


def hostname_errors(response) -> str:
    assert response.status_code == 200
    return " ".join(response.context["form"].errors["hostname"])


@pytest.fixture
def platform_hosts(settings):
    """The back office on certmgr.platform.test, and two reserved domains."""
    settings.CERTMGR_BACKOFFICE_HOSTS = [
        *settings.CERTMGR_BACKOFFICE_HOSTS,
        "certmgr.platform.test",
    ]
    settings.CERTMGR_RESERVED_DOMAINS = ["edge.platform.test", ".status.platform.test"]


@pytest.mark.parametrize(
    "hostname",
    [
        "127.0.0.0x1",
        "0x7f.0x1",
        "169.254.169.0xfe",
        "127.1",
        "2130706433",
        "0177.0.0.1",
        "[::1]",
        "::ffff:169.254.169.254",
    ],
)
def test_it_refuses_a_hostname_a_resolver_reads_as_an_ip_address(as_alice, acme, channel, hostname):
    assert hostname_errors(post_new(as_alice, acme, hostname)) == (
        "Enter a hostname, not an IP address."
    )
    assert hostname_errors(post_edit(as_alice, channel, hostname)) == (
        "Enter a hostname, not an IP address."
    )
    assert list(SalesChannel.objects.values_list("hostname", flat=True)) == ["shop.acme.test"]


@pytest.mark.parametrize(
    ("hostname", "reserved"),
    [
        ("certmgr.platform.test", "certmgr.platform.test"),  # the back office itself
        ("CERTMGR.Platform.TEST.", "certmgr.platform.test"),
        ("admin.certmgr.platform.test", "certmgr.platform.test"),
        ("edge.platform.test", "edge.platform.test"),
        ("a.b.edge.platform.test", "edge.platform.test"),
        ("status.platform.test", ".status.platform.test"),
        ("x.status.platform.test", ".status.platform.test"),
    ],
)
def test_it_refuses_the_back_office_hosts_and_reserved_domains_on_create_and_edit(
    as_alice, acme, channel, platform_hosts, hostname, reserved
):
    words = f"is reserved for the platform ({reserved} and the names under it)"
    assert words in hostname_errors(post_new(as_alice, acme, hostname))
    assert words in hostname_errors(post_edit(as_alice, channel, hostname))
    assert list(SalesChannel.objects.values_list("hostname", flat=True)) == ["shop.acme.test"]


@pytest.mark.parametrize("hostname", ["shop.localhost", "a.b.localhost"])
def test_it_refuses_names_under_localhost(as_alice, acme, channel, hostname):
    assert "point at the machine itself" in hostname_errors(post_new(as_alice, acme, hostname))
    assert "point at the machine itself" in hostname_errors(post_edit(as_alice, channel, hostname))


@pytest.mark.parametrize("hostname", ["platform.test", "shop.platform.test", "edge-platform.test"])
def test_names_beside_the_reserved_ones_stay_free(as_alice, acme, platform_hosts, hostname):
    assert post_new(as_alice, acme, hostname).status_code == 302
    assert SalesChannel.objects.filter(hostname=hostname).exists()


@pytest.mark.parametrize("hostname", [TOO_LONG, OVERLONG])
def test_it_refuses_a_hostname_too_long_for_the_edge_file_names(as_alice, acme, channel, hostname):
    words = "A hostname here has at most 251 characters"
    assert words in hostname_errors(post_new(as_alice, acme, hostname))
    assert words in hostname_errors(post_edit(as_alice, channel, hostname))


def test_the_longest_hostname_is_accepted(as_alice, acme):
    assert post_new(as_alice, acme, LONGEST).status_code == 302
    assert SalesChannel.objects.get().hostname == LONGEST


def test_a_channel_stored_with_an_overlong_hostname_says_why_it_cannot_be_deployed(
    as_alice, acme, pki, settings
):
    # Stored before the 251-character rule; its certificate names it (the SSL page checks).
    channel = SalesChannel.objects.create(institution=acme, name="Old", hostname=OVERLONG)
    leaf = demo_pki.leaf_create(
        issuer=pki["intermediate"], hostnames=[OVERLONG], common_name="old shop"
    )
    bundle = certificate_bundle_parse(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=pki["intermediate"].certificate_pem,
    )
    certificate = certificate_services.certificate_upload(
        institution=acme, name="old", kind=Certificate.Kind.SSL, bundle=bundle, actor=None
    )

    response = as_alice.post(
        ssl_url(channel), {"mode": "uploaded", "certificate": certificate.pk}, follow=True
    )

    assert response.status_code == 200
    page = page_html(response)
    assert "the hostname has 253 characters, too long for the edge&#x27;s file names" in page
    assert "Give the channel a shorter hostname." in page
    assert edge_files(settings) == set()


def test_a_hostname_taken_between_the_check_and_the_insert_is_a_form_error(
    as_alice, acme, opera, monkeypatch
):
    """Inside the test's transaction: the service's savepoint leaves the connection usable
    (PostgreSQL would refuse every later query of an aborted transaction)."""
    clean_hostname = ChannelForm.clean_hostname

    def clean_hostname_then_lose_the_race(form):
        hostname = clean_hostname(form)
        SalesChannel.objects.create(institution=opera, name="Theirs", hostname=hostname)
        return hostname

    monkeypatch.setattr(ChannelForm, "clean_hostname", clean_hostname_then_lose_the_race)

    response = post_new(as_alice, acme, "race.acme.test")

    assert hostname_errors(response) == "This hostname is already used by a sales channel."
    assert SalesChannel.objects.get().institution == opera
    assert not AuditEvent.objects.filter(action="channel.create").exists()
