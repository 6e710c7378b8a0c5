"""Through a real browser: the API's documentation page (README, "API") renders the schema
with Swagger UI served by certmgr itself, under the Content-Security-Policy, without a
violation, and the token pages work."""

import pytest
from django.urls import reverse

from tests.browser.conftest import log_in
from tests.browser.test_csp import violations, watched_page  # noqa: F401 (fixture)
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_page_renders_every_operation_without_a_csp_violation(
    watched_page,  # noqa: F811
    alice,
    acme,
):
    page = watched_page
    log_in(page, "alice", PASSWORD, next_path="/")
    response = page.goto(reverse("api:docs"))
    assert response.status == 200

    page.locator(".opblock-summary-path", has_text="/api/v1/channels/{id}/status/").wait_for()

    assert page.locator(".opblock").count() >= 24
    assert violations(page) == []


def test_a_manager_creates_a_token_and_sees_it_once(watched_page, alice, acme):  # noqa: F811
    page = watched_page
    log_in(page, "alice", PASSWORD, next_path="/")
    page.goto(reverse("institution_list"))
    page.click("a:has-text('API tokens')")
    page.fill("input[name=name]", "ticketing onboarding")
    page.check("input[name=role][value=manager]")
    page.click("button:has-text('Create token')")
    page.wait_for_load_state("load")

    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("certmgr_")
    assert "ticketing onboarding" in page.locator("table.certificates").inner_text()
    page.goto(reverse("api_tokens", args=[acme.slug]))  # the page again, later
    assert page.locator("#token-secret").count() == 0
    assert secret not in page.content()
    assert violations(page) == []
