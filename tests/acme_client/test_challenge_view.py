"""GET /.well-known/acme-challenge/<token>: answered from the database, on the right host only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from acme_client.models import AcmeChallenge
from saleschannels.models import SalesChannel

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(acme, opera):
    SalesChannel.objects.create(institution=acme, name="Acme", hostname="shop.acme.test")
    SalesChannel.objects.create(institution=opera, name="Opera", hostname="tickets.opera.test")
    return AcmeChallenge.objects.create(
        token="tok-123",
        key_authorization="tok-123.thumbprint",
        hostname="shop.acme.test",
        expires_at=timezone.now() + timedelta(hours=1),
    )


def test_it_answers_the_key_authorization_in_plain_text(client, challenge):
    response = client.get("/.well-known/acme-challenge/tok-123", HTTP_HOST="shop.acme.test")
    assert response.status_code == 200
    assert response.content == b"tok-123.thumbprint"
    assert response["Content-Type"].startswith("text/plain")
    assert b"cert-alert" not in response.content


def test_it_is_a_404_for_an_unknown_token_or_another_host(client, challenge):
    assert (
        client.get("/.well-known/acme-challenge/nope", HTTP_HOST="shop.acme.test").status_code
        == 404
    )
    other = client.get("/.well-known/acme-challenge/tok-123", HTTP_HOST="tickets.opera.test")
    assert other.status_code == 404
    backoffice = client.get("/.well-known/acme-challenge/tok-123")
    assert backoffice.status_code == 404


def test_an_expired_challenge_is_not_answered(client, challenge):
    challenge.expires_at = timezone.now() - timedelta(seconds=1)
    challenge.save()
    response = client.get("/.well-known/acme-challenge/tok-123", HTTP_HOST="shop.acme.test")
    assert response.status_code == 404
