"""API tokens (README, "API"): made by a manager in the back office, shown once, stored as a
hash, refused once expired or revoked, limited per token, named in the audit trail."""

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from core.models import AuditEvent
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _create(as_alice, acme, **fields):
    data = {"name": "onboarding", "role": "manager", "expires_on": "", **fields}
    if not data["expires_on"]:
        data["expires_on"] = (timezone.now().date() + timedelta(days=30)).isoformat()
    return as_alice.post(reverse("api_tokens", args=[acme.slug]), data)


def test_a_manager_creates_a_token_and_sees_its_secret_once(as_alice, acme):
    response = _create(as_alice, acme)

    assert response.status_code == 200
    secret = response.context["created"].secret
    assert secret.startswith("certmgr_") and len(secret) > 40
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    again = as_alice.get(reverse("api_tokens", args=[acme.slug]))
    assert secret not in again.content.decode()
    assert "onboarding" in again.content.decode()


def test_only_the_secrets_sha256_is_stored(as_alice, acme):
    secret = _create(as_alice, acme).context["created"].secret

    token = ApiToken.objects.get()
    assert token.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_apitoken")
        stored = repr(cursor.fetchall())
    assert secret not in stored
    assert secret[len("certmgr_") :] not in stored


def test_the_token_works_for_its_institution_with_its_role(as_alice, acme):
    secret = _create(as_alice, acme, role="viewer").context["created"].secret
    api = ApiClient(secret)

    assert api.get(reverse("api:channel_list")).status_code == 200
    refused = api.post(reverse("api:channel_list"), {"name": "x", "hostname": "x.test"})
    assert refused.status_code == 403


def test_a_viewer_cannot_manage_tokens_and_another_institution_is_not_found(
    client, bob, acme, opera, alice
):
    client.force_login(bob)
    assert client.get(reverse("api_tokens", args=[acme.slug])).status_code == 403
    client.force_login(alice)
    assert client.get(reverse("api_tokens", args=[opera.slug])).status_code == 404


def test_a_token_lives_at_most_the_longest_lifetime(as_alice, acme, settings):
    settings.CERTMGR_API_TOKEN_DAYS_MAX = 10
    too_late = (timezone.now().date() + timedelta(days=11)).isoformat()

    response = _create(as_alice, acme, expires_on=too_late)

    assert response.context["form"].errors == {
        "expires_on": ["A token lives at most 10 days: choose an earlier day."]
    }
    assert not ApiToken.objects.exists()


def test_a_revoked_token_is_refused_with_401(as_alice, acme):
    secret = _create(as_alice, acme).context["created"].secret
    token = ApiToken.objects.get()
    api = ApiClient(secret)
    assert api.get(reverse("api:channel_list")).status_code == 200

    revoked = as_alice.post(reverse("api_token_revoke", args=[acme.slug, token.pk]))
    response = api.get(reverse("api:channel_list"))

    assert revoked.status_code == 302
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response.json()["detail"] == "Invalid, expired or revoked token."
    assert response["WWW-Authenticate"].startswith("Bearer")
    event = AuditEvent.objects.get(action=AuditEvent.Action.API_TOKEN_REVOKE)
    assert event.actor.username == "alice" and event.target_id == token.pk


def test_an_expired_token_is_refused_with_401(acme, make_token):
    _, secret = make_token(acme, days=3)
    api = ApiClient(secret)

    with time_machine.travel(timezone.now() + timedelta(days=3, seconds=1)):
        response = api.get(reverse("api:channel_list"))

    assert response.status_code == 401


def test_no_token_or_an_unknown_one_is_refused_with_401(acme):
    for api in (ApiClient(None), ApiClient("certmgr_not-a-token")):
        response = api.get(reverse("api:channel_list"))
        assert response.status_code == 401
        assert response["Content-Type"] == PROBLEM


def test_a_logged_in_session_opens_nothing_on_the_api(as_alice):
    """Token authentication only: the back office's cookie is no credential there."""
    assert as_alice.get(reverse("api:channel_list")).status_code == 401
    response = as_alice.post(
        reverse("api:channel_list"),
        {"name": "x", "hostname": "x.test"},
        content_type="application/json",
    )
    assert response.status_code == 401


def test_each_token_has_its_own_budget_and_over_it_gets_a_429_problem(acme, make_token, settings):
    settings.CERTMGR_API_THROTTLE_RATE = "3/min"
    first, second = ApiClient(make_token(acme)[1]), ApiClient(make_token(acme)[1])
    url = reverse("api:channel_list")

    answers = [first.get(url).status_code for _ in range(4)]
    other = second.get(url)

    assert answers == [200, 200, 200, 429]
    refused = first.get(url)
    assert refused["Content-Type"] == PROBLEM
    assert refused.json()["status"] == 429
    assert int(refused["Retry-After"]) > 0
    assert other.status_code == 200


def test_the_audit_entry_names_the_token_on_the_channel_page(as_alice, acme, acme_api):
    created = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "tickets.acme.example"}
    ).json()

    page = as_alice.get(reverse("channel_detail", args=[created["id"]]))

    assert "Sales channel created by API token “acme onboarding”" in page.content.decode()


def test_the_token_page_is_linked_from_the_institutions(as_alice, acme):
    page = as_alice.get(reverse("institution_list"))
    assert reverse("api_tokens", args=[acme.slug]) in page.content.decode()
