"""The HTTP ownership token: GET /.well-known/certmgr-challenge/<token> on a sales channel's
own hostname (onboarding/views.py), and onboarding/checks_http.py's http_token_verify()
fetching it through a real nginx edge from the app, with a real DNS server."""

import pytest
from django.urls import reverse

from onboarding.checks_http import http_token_verify
from saleschannels.findings import Check, Finding, Reason
from saleschannels.models import SalesChannel
from tests.nginx import nginx_run
from tests.support import port_free, require_program

SHOP = "shop.acme.test"
OTHER = "tickets.opera.test"
PREFIX = "/.well-known/certmgr-challenge/"


def channel_create(institution, hostname=SHOP) -> SalesChannel:
    return SalesChannel.objects.create(institution=institution, name=hostname, hostname=hostname)


def fetch(client, host, token, method="get"):
    return getattr(client, method)(f"{PREFIX}{token}", HTTP_HOST=host)


@pytest.mark.django_db
def test_the_channels_own_token_is_answered_as_plain_text(client, acme):
    channel = channel_create(acme)
    token = channel.verification_token
    assert token.startswith("certmgr-")

    response = fetch(client, SHOP, token)

    assert response.status_code == 200
    assert response.content == token.encode()
    assert response["Content-Type"] == "text/plain"
    assert reverse("certmgr_challenge", args=[token]) == f"{PREFIX}{token}"
    assert fetch(client, "SHOP.acme.test:80", token).content == token.encode()
    head = fetch(client, SHOP, token, "head")
    assert (head.status_code, head.content) == (200, b"")
    assert fetch(client, SHOP, token, "post").status_code == 405


@pytest.mark.django_db
def test_a_wrong_token_is_a_404(client, acme, opera):
    channel = channel_create(acme)
    other = channel_create(opera, OTHER)
    token = channel.verification_token

    for wrong in (token[:-1], token + "x", token.upper(), other.verification_token, "certmgr-"):
        response = fetch(client, SHOP, wrong)
        assert response.status_code == 404, wrong
        assert token.encode() not in response.content
    # Another channel's token is answered on its own hostname only.
    assert fetch(client, OTHER, other.verification_token).status_code == 200


@pytest.mark.django_db
def test_only_the_token_alphabet_reaches_the_view(client, acme):
    channel = channel_create(acme)
    token = channel.verification_token

    channel.verification_token = "certmgr-" + "a" * 56  # 64 characters, the most
    channel.save(update_fields=["verification_token"])
    assert fetch(client, SHOP, channel.verification_token).status_code == 200
    too_long = "certmgr-" + "a" * 57
    for path in (f"{token}/", f"{token}.txt", f"{token}=", f"{token}%20", too_long, ""):
        assert fetch(client, SHOP, path).status_code == 404, path


@pytest.mark.django_db
def test_the_back_office_and_unknown_hosts_do_not_answer(client, acme):
    token = channel_create(acme).verification_token

    assert fetch(client, "testserver", token).status_code == 404  # the back office
    assert client.get(f"{PREFIX}{token}").status_code == 404
    assert fetch(client, "unknown.example.net", token).status_code == 400


# --- http_token_verify() through a real edge -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_token_is_fetched_through_the_edge_from_the_app(
    live_server, challtestsrv, acme, settings, tmp_path
):
    """As a CA would: DNS names the edge, nginx passes /.well-known/ to the app, which
    answers the channel's token on the channel's hostname."""
    require_program("nginx")
    channel = channel_create(acme)
    challtestsrv.a_set(SHOP, ["127.0.0.1"])
    settings.CERTMGR_DNS_RESOLVERS = [challtestsrv.dns_address]
    settings.CERTMGR_EDGE_ADDRESSES = ["127.0.0.1"]  # the edge; internal, but the platform's
    settings.CERTMGR_PROBE_TIMEOUT = 5.0
    (tmp_path / "nginx").mkdir()
    with nginx_run(
        edge_dir=tmp_path / "edge", workdir=tmp_path / "nginx", acme_upstream=live_server.url
    ) as edge:
        settings.ACME_HTTP01_PORT = edge.http_port
        settings.ACME_HTTP01_TLS_PORT = port_free()
        url = f"http://{SHOP}:{edge.http_port}{PREFIX}{channel.verification_token}"

        found = http_token_verify(channel)

        channel.verification_token = "certmgr-not-the-stored-one"
        wrong = http_token_verify(channel)

    assert found == Finding(Check.HTTP_TOKEN, Reason.HTTP_TOKEN_FOUND, {"url": url})
    assert found.ok
    assert wrong.reason == Reason.HTTP_TOKEN_WRONG
    assert wrong.params["hostname"] == SHOP
    assert wrong.words.endswith("did not answer this channel's token.")
    assert wrong.advice == (
        f"Point {SHOP} at the platform first, or prove ownership with the TXT record."
    )
