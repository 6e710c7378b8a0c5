"""Host routing: back office on its hosts, shops on /.well-known/ only, others 400."""

import pytest
from django.urls import reverse

from saleschannels.models import SalesChannel

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(acme):
    return SalesChannel.objects.create(institution=acme, name="Main", hostname="shop.acme.test")


def test_the_back_office_answers_on_its_hosts(client, settings):
    settings.CERTMGR_BACKOFFICE_HOSTS = ["backoffice.example.com"]
    response = client.get(reverse("certificate_list"), HTTP_HOST="backoffice.example.com")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_back_office_host_may_carry_a_port(client, settings):
    settings.CERTMGR_BACKOFFICE_HOSTS = ["backoffice.example.com"]
    response = client.get(reverse("login"), HTTP_HOST="BackOffice.example.com:8443")
    assert response.status_code == 200


def test_an_unknown_host_gets_400(client, channel):
    response = client.get(reverse("login"), HTTP_HOST="evil.example.net")
    assert response.status_code == 400
    response = client.get("/.well-known/acme-challenge/x", HTTP_HOST="evil.example.net")
    assert response.status_code == 400


def test_a_shop_host_cannot_reach_the_back_office(client, alice, channel):
    client.force_login(alice)
    for path in (reverse("login"), reverse("certificate_list"), "/admin/", "/"):
        response = client.get(path, HTTP_HOST="shop.acme.test")
        assert response.status_code == 404, path
        assert b"Certificates" not in response.content


def test_a_shop_host_reaches_the_well_known_path(client, channel, rf):
    from saleschannels.middleware import HostRoutingMiddleware

    seen = {}

    def view(request):
        seen["channel"] = request.sales_channel
        from django.http import HttpResponse

        return HttpResponse("ok")

    request = rf.get("/.well-known/anything", HTTP_HOST="SHOP.acme.test")
    response = HostRoutingMiddleware(view)(request)
    assert response.status_code == 200
    assert seen["channel"] == channel
    # Through the whole stack: routed to the URL resolver (nothing is served there yet).
    assert client.get("/.well-known/anything", HTTP_HOST="shop.acme.test").status_code == 404
