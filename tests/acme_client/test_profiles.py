"""A certificate profile per channel (https://datatracker.ietf.org/doc/draft-ietf-acme-profiles/)
and a renewal time that follows the certificate's real lifetime.

The SSL Management page offers the profiles the CA's directory lists in `meta.profiles`, with
their descriptions; the order asks for the channel's profile (else ACME_PROFILE). Pebble 2.4
lists none: the fault proxy in front of it lists them and, like Let's Encrypt, refuses an
order for a profile it does not list. A Pebble issuing 160-hour certificates shows the
renewal at half their life, or in ARI's window.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from acme_client import services
from acme_client.models import AcmeOrder
from certificates.renewal import renewal_due_at, renewal_window
from core.models import AuditEvent
from saleschannels.models import SalesChannel
from tests.acme_client.issuing import issue
from tests.acme_fault_proxy import acme_fault_proxy_run
from tests.pebble import pebble_run

PROFILES = {
    "classic": "The profile certificates have always had, valid for 90 days",
    "shortlived": "Certificates valid for about 160 hours, renewed often",
}
SHORT_LIFETIME = timedelta(hours=160)


@pytest.fixture(autouse=True)
def _profiles_forgotten():
    """Each test reads the CA's directory afresh (the page caches it for a few minutes)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def managed(acme, make_verified_channel):
    return make_verified_channel(acme, name="Main", hostname="shop.acme.test", ssl_mode="managed")


@pytest.fixture
def unmanaged(acme, make_verified_channel):
    return make_verified_channel(acme, name="Main", hostname="shop.acme.test")


def ssl_page(client, channel) -> str:
    return client.get(reverse("channel_ssl", args=[channel.pk])).content.decode()


def test_short_lived_certificates_renew_by_half_their_life():
    start = timezone.now()
    latest = renewal_due_at(not_before=start, not_after=start + SHORT_LIFETIME, random=lambda: 1.0)
    assert latest == start + SHORT_LIFETIME / 2
    # From ten days on, by two thirds; ARI's time wins over both.
    long = renewal_due_at(not_before=start, not_after=start + timedelta(days=90), random=lambda: 1)
    assert long == start + timedelta(days=60)
    suggested = start + timedelta(hours=100)
    assert (
        renewal_due_at(
            not_before=start,
            not_after=start + SHORT_LIFETIME,
            suggested=suggested,
            random=lambda: 0.0,
        )
        == suggested
    )


@pytest.mark.django_db(transaction=True)
def test_the_ssl_page_lists_the_profiles_the_ca_offers(proxy, managed, as_alice):
    proxy.profiles(PROFILES)
    page = ssl_page(as_alice, managed)
    for name, description in PROFILES.items():
        assert f'type="radio" name="acme_profile" value="{name}"' in page
        assert description in page
    assert 'name="acme_profile" value="" checked' in page  # the platform's default


@pytest.mark.django_db(transaction=True)
def test_no_choice_when_the_ca_lists_no_profile(pebble, managed, as_alice):
    page = ssl_page(as_alice, managed)
    assert "Pebble (test CA) offers no choice of certificate profile" in page
    assert 'type="radio" name="acme_profile"' not in page


@pytest.mark.django_db(transaction=True)
def test_a_chosen_profile_is_asked_for_in_the_order(proxy, unmanaged, as_alice):
    proxy.profiles(PROFILES)
    response = as_alice.post(
        reverse("channel_ssl", args=[unmanaged.pk]),
        {"mode": "managed", "acme_profile": "shortlived"},
    )
    assert response.status_code == 302
    channel = SalesChannel.objects.get(pk=unmanaged.pk)
    assert channel.acme_profile == "shortlived"
    event = AuditEvent.objects.filter(details__acme_profile="shortlived").get()
    assert event.details["previous"] == {"acme_profile": ""}
    # The page queued the first issuance under its claim; the worker's part, run here.
    assert services.channel_certificate_issue(channel_id=channel.pk, claim=channel.renewal_claim)
    assert proxy.new_orders[-1]["profile"] == "shortlived"
    assert AcmeOrder.objects.get().profile == "shortlived"
    assert 'name="acme_profile" value="shortlived" checked' in ssl_page(as_alice, channel)


@pytest.mark.django_db(transaction=True)
def test_a_profile_the_ca_does_not_list_is_refused(proxy, managed, as_alice):
    proxy.profiles(PROFILES)
    response = as_alice.post(
        reverse("channel_ssl", args=[managed.pk]), {"mode": "managed", "acme_profile": "tlsserver"}
    )
    assert response.status_code == 200
    assert "The CA does not offer the profile &#x27;tlsserver&#x27;" in response.content.decode()
    assert SalesChannel.objects.get(pk=managed.pk).acme_profile == ""


@pytest.mark.django_db(transaction=True)
def test_no_profile_is_accepted_when_the_ca_lists_none(pebble, managed, as_alice):
    response = as_alice.post(
        reverse("channel_ssl", args=[managed.pk]), {"mode": "managed", "acme_profile": "classic"}
    )
    assert response.status_code == 200
    assert "The CA offers no choice of profile" in response.content.decode()
    assert SalesChannel.objects.get(pk=managed.pk).acme_profile == ""


@pytest.mark.django_db(transaction=True)
def test_without_a_profile_of_its_own_the_default_is_asked_for(proxy, managed, settings):
    proxy.profiles(PROFILES)
    settings.ACME_PROFILE = "classic"
    assert issue(managed) is not None
    assert proxy.new_orders[-1]["profile"] == "classic"
    settings.ACME_PROFILE = ""
    assert issue(managed) is not None
    assert "profile" not in proxy.new_orders[-1]
    assert [order.profile for order in AcmeOrder.objects.order_by("pk")] == ["classic", ""]


@pytest.fixture
def shortlived_pebble(live_server, tmp_path, settings):
    """Pebble issuing 160-hour certificates (Let's Encrypt's shortlived profile), the app
    pointed at it as tests/conftest.py's `pebble` fixture does."""
    port = int(live_server.url.rsplit(":", 1)[1])
    with pebble_run(
        workdir=tmp_path / "pebble",
        http_port=port,
        validity_seconds=int(SHORT_LIFETIME.total_seconds()),
    ) as server:
        settings.ACME_DIRECTORY_URL = server.directory_url
        settings.ACME_CA_BUNDLE = str(server.ca_bundle)
        settings.ACME_ORDER_TIMEOUT = 60
        settings.CERTMGR_DNS_RESOLVERS = [f"127.0.0.1:{server.dns_port}"]
        settings.CERTMGR_EDGE_ADDRESSES = ["127.0.0.1"]
        settings.ACME_HTTP01_PORT = port
        yield server


@pytest.mark.django_db(transaction=True)
def test_a_160_hour_certificate_renews_at_half_its_life(shortlived_pebble, managed):
    certificate = issue(managed)
    lifetime = certificate.not_after - certificate.not_before
    assert abs(lifetime - SHORT_LIFETIME) <= timedelta(seconds=1)
    managed.refresh_from_db()
    start, end = renewal_window(not_before=certificate.not_before, not_after=certificate.not_after)
    assert end == certificate.not_before + lifetime / 2
    assert start <= managed.renewal_due_at <= end


@pytest.mark.django_db(transaction=True)
def test_a_160_hour_certificate_renews_in_aris_window(
    shortlived_pebble, managed, tmp_path, settings
):
    with acme_fault_proxy_run(upstream=shortlived_pebble, workdir=tmp_path / "proxy") as proxy:
        settings.ACME_DIRECTORY_URL = proxy.directory_url
        settings.ACME_CA_BUNDLE = str(proxy.ca_bundle)
        start = (timezone.now() + timedelta(hours=100)).replace(microsecond=0)
        proxy.renewal_info(start=start, end=start + timedelta(hours=4))
        certificate = issue(managed)
    managed.refresh_from_db()
    assert start <= managed.renewal_due_at <= start + timedelta(hours=4)
    assert managed.renewal_due_at != certificate.not_before + SHORT_LIFETIME / 2


@pytest.mark.django_db(transaction=True)
def test_the_ca_refuses_an_order_for_a_profile_it_does_not_list(proxy, managed, settings):
    """What the form keeps managers from: the CA's own refusal (as Let's Encrypt's), recorded
    as a failure of the order, the channel's certificate left as it was."""
    proxy.profiles(PROFILES)
    settings.ACME_PROFILE = "tlsserver"
    assert issue(managed) is None
    assert proxy.new_orders[-1]["profile"] == "tlsserver"
    managed.refresh_from_db()
    assert managed.renewal_failures == 1
    assert managed.active_certificate is None
    assert AcmeOrder.objects.get().status == AcmeOrder.Status.FAILED
    # Said as what it is, with what to do (not "HTTP 400").
    assert managed.status_reason == "acme_invalid_profile"
    assert AcmeOrder.objects.get().error == (
        "The CA (Pebble (test CA)) does not offer the certificate profile the order asked for."
    )
