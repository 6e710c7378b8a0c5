"""Tenant isolation and roles over every route of the API (README, "API"), with tokens.

The routes come from the URL resolver (tests/urlwalk.py), so an API route added later is
walked without being listed; their arguments are filled by the page walk's ARGUMENT_KINDS
with the objects of tests/certmgr/test_isolation.py's fixture (one of every kind an
institution owns). As the pages:

* a token of another institution (Acme's manager token, Acme's viewer token) gets, for each
  of the Opera's objects and every method, exactly the answer it gets for a missing object
  (404, or 405 for a method the route does not take), never any of the Opera's names, and
  changes nothing of the Opera's;
* a viewer token gets 403 for every write on its own institution's objects (405 where the
  route takes no such method), in the pages' words, and changes nothing;
* no answer to any token, the owner's included, carries private-key material;
* the Opera's own token reaches each of its objects (the positive control).

Each write is rolled back after the check, so that every route sees the same objects.
"""

import pytest
from django.db import transaction

from tests.api.conftest import ApiClient
from tests.certmgr import test_isolation as page_walk
from tests.certmgr.test_isolation import (
    MISSING,
    Findings,
    argument_kind,
    argument_values,
    post_body,
    stored_secrets,
    tenant_rows,
)
from tests.urlwalk import routes_all

# The page walk's fixtures: its institutions with one of everything, and fast hashing.
tenants = page_walk.tenants
_fast_password_hashing = page_walk._fast_password_hashing

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "patch", "delete")
WRITES = ("post", "patch", "delete")
# Not for tokens: the documentation page is for the back office's logged-in users.
SESSION_ONLY = {"api:docs"}
# Any other path under /api/v1/: nothing there, a 404 for every token and method.
NOTHING_THERE = "api:not_found"


def api_routes():
    routes = [
        route
        for route in routes_all()
        if route.description.startswith(API_PREFIX) and route.name not in SESSION_ONLY
    ]
    assert len(routes) > 15
    return routes


class TokenVisitor:
    """A token's requests, each rolled back after `look` saw its answer."""

    def __init__(self, secret: str):
        self.api = ApiClient(secret)

    def send(self, method: str, url: str, body=None, look=None):
        with transaction.atomic():
            if method in ("get", "delete"):
                response = getattr(self.api, method)(url)
            else:
                response = getattr(self.api, method)(url, body or {})
            if look is not None:
                look(response)
            transaction.set_rollback(True)
        return response


@pytest.fixture
def tokens(tenants, make_token):
    """Secrets of tokens: Acme's manager and viewer, the Opera's manager."""
    acme, opera = tenants["acme"].institution, tenants["opera"].institution
    return {
        "acme manager": make_token(acme, role="manager", name="walk acme manager")[1],
        "acme viewer": make_token(acme, role="viewer", name="walk acme viewer")[1],
        "opera manager": make_token(opera, role="manager", name="walk opera manager")[1],
    }


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    settings.CERTMGR_API_THROTTLE_RATE = ""


def _json_body(tenant) -> dict:
    """The page walk's POST body naming the tenant's objects, in the API's field names."""
    body = post_body(tenant)
    return {**body, "apple_pay_enabled": True}


@pytest.mark.parametrize("who", ["acme manager", "acme viewer"])
def test_no_api_route_gives_anything_of_another_institution(who, tenants, tokens):
    opera = tenants["opera"]
    visitor = TokenVisitor(tokens[who])
    secrets = stored_secrets()
    findings = Findings()
    opera_before = tenant_rows(opera)
    body = _json_body(opera)

    def look(label):
        def check(response):
            findings.check(label, response, secrets=secrets, markers=opera.markers)
            if tenant_rows(opera) != opera_before:
                findings.problems.append(f"{label}: the Opera's rows changed")

        return check

    walked = 0
    for route in api_routes():
        if argument_kind(route) is None:
            continue  # the token's own lists and forms: the viewer walk below
        walked += 1
        missing_url = route.url(dict.fromkeys(route.arguments, MISSING))
        for values in argument_values(route, opera):
            url = route.url(values)
            for method in METHODS:
                label = f"{who} {method.upper()} {url} ({route.label})"
                expected = visitor.send(method, missing_url, body).status_code
                answered = visitor.send(method, url, body, look(label)).status_code
                if answered not in (404, 405):
                    findings.problems.append(f"{label} -> {answered}: expected 404 or 405")
                if answered != expected:
                    findings.problems.append(
                        f"{label} -> {answered}, but {expected} for a missing object"
                    )
    findings.assert_none()
    assert walked >= 12
    assert findings.requests > 100


def test_a_viewer_token_writes_nothing_anywhere_and_is_told_so(tenants, tokens):
    acme = tenants["acme"]
    visitor = TokenVisitor(tokens["acme viewer"])
    secrets = stored_secrets()
    findings = Findings()
    acme_before = tenant_rows(acme)
    body = _json_body(acme)
    for route in api_routes():
        if route.name == NOTHING_THERE:
            continue
        for values in argument_values(route, acme):
            url = route.url(values)
            for method in WRITES:
                label = f"viewer {method.upper()} {url} ({route.label})"
                response = visitor.send(
                    method,
                    url,
                    body,
                    lambda r, label=label: findings.check(label, r, secrets=secrets),
                )
                if response.status_code == 403:
                    assert response["Content-Type"] == "application/problem+json", label
                    assert response.json()["detail"].startswith("You need the manager role"), label
                elif response.status_code != 405:
                    findings.problems.append(
                        f"{label} -> {response.status_code}: expected 403 or 405"
                    )
    findings.assert_none()
    assert tenant_rows(acme) == acme_before


@pytest.mark.parametrize(("who", "whose"), [("acme manager", "acme"), ("opera manager", "opera")])
def test_no_answer_to_the_owners_token_carries_a_private_key(who, whose, tenants, tokens):
    tenant = tenants[whose]
    visitor = TokenVisitor(tokens[who])
    secrets = stored_secrets()
    findings = Findings()
    reached = 0
    body = _json_body(tenant)
    for route in api_routes():
        for values in argument_values(route, tenant):
            url = route.url(values)
            for method in METHODS:
                label = f"{who} {method.upper()} {url} ({route.label})"
                response = visitor.send(
                    method,
                    url,
                    body,
                    lambda r, label=label: findings.check(label, r, secrets=secrets),
                )
                reached += method == "get" and response.status_code == 200
    findings.assert_none()
    assert reached > 20


def test_the_owners_token_reaches_every_object_the_walk_uses(tenants, tokens):
    """The positive control: each URL of the walk names an object the Opera's token gets."""
    opera = tenants["opera"]
    visitor = TokenVisitor(tokens["opera manager"])
    unreached = []
    for route in api_routes():
        kind = argument_kind(route)
        if kind is None:
            continue
        for values in argument_values(route, opera):
            url = route.url(values)
            answers = {
                method: visitor.send(method, url, _json_body(opera)).status_code
                for method in METHODS
            }
            # 400, 409, 415: the object was found, then the input or its state refused.
            if not any(
                200 <= status < 300 or status in (400, 409, 415) for status in answers.values()
            ):
                unreached.append(f"{url} ({route.label}): {answers}")
    assert not unreached, "\n".join(unreached)
