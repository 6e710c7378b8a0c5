"""Fixtures of the API's tests: tokens made through the real service, and a client that sends
one (README, "API")."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api import services


class ApiClient:
    """Django's test client sending `Authorization: Bearer <secret>` with every request."""

    def __init__(self, secret: str | None):
        self.client = Client(raise_request_exception=False)
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}

    def get(self, path, data=None, **extra):
        return self.client.get(path, data, **self.headers, **extra)

    def post(self, path, data=None, *, json=True, **extra):
        if json:
            return self.client.post(
                path, data or {}, content_type="application/json", **self.headers, **extra
            )
        return self.client.post(path, data or {}, **self.headers, **extra)

    def patch(self, path, data=None, **extra):
        return self.client.patch(
            path, data or {}, content_type="application/json", **self.headers, **extra
        )

    def delete(self, path, **extra):
        return self.client.delete(path, **self.headers, **extra)


@pytest.fixture
def make_token(db):
    """A token of `institution` with `role`, returned as (token, secret)."""

    def make(institution, *, role="manager", name=None, days=30, actor=None):
        created = services.api_token_create(
            institution=institution,
            name=name or f"{institution.slug} {role} token",
            role=role,
            expires_at=timezone.now() + timedelta(days=days),
            actor=actor,
        )
        return created.token, created.secret

    return make


@pytest.fixture
def acme_api(acme, alice, make_token) -> ApiClient:
    """A manager token of Acme Tickets, made by Alice."""
    return ApiClient(make_token(acme, role="manager", name="acme onboarding", actor=alice)[1])


@pytest.fixture
def acme_viewer_api(acme, alice, make_token) -> ApiClient:
    return ApiClient(make_token(acme, role="viewer", name="acme dashboard", actor=alice)[1])


@pytest.fixture
def opera_api(opera, charlie, make_token) -> ApiClient:
    return ApiClient(make_token(opera, role="manager", name="opera onboarding", actor=charlie)[1])
