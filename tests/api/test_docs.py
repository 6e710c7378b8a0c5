"""The schema and its documentation page (README, "API")."""

import pytest
from django.urls import reverse

from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_the_docs_page_is_for_logged_in_users_and_loads_nothing_from_elsewhere(client, as_alice):
    anonymous = client.__class__().get(reverse("api:docs"))
    page = as_alice.get(reverse("api:docs"))

    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "http://" not in html and "https://" not in html  # no CDN
    # Its settings come as a script file of its own: the policy allows no inline script.
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert "<script>" not in html
    script = as_alice.get(reverse("api:docs") + "?script=")
    assert script.status_code == 200 and script["Content-Type"] == "application/javascript"


def test_the_schema_answers_a_token_and_a_logged_in_user_only(as_alice, acme, make_token):
    url = reverse("api:schema") + "?format=json"
    schema = ApiClient(make_token(acme, role="viewer")[1]).get(url)

    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/channels/{id}/status/" in document["paths"]
    assert document["components"]["securitySchemes"] == {
        "token": {"type": "http", "scheme": "bearer"}
    }
    assert as_alice.get(url).status_code == 200
    assert ApiClient(None).get(url).status_code == 401


def test_every_operation_documents_its_problem_answers(acme, make_token):
    document = ApiClient(make_token(acme)[1]).get(reverse("api:schema") + "?format=json").json()
    operations = [operation for item in document["paths"].values() for operation in item.values()]

    assert len(operations) >= 24
    for operation in operations:
        for status in ("401", "403", "404", "429"):
            content = operation["responses"][status]["content"]
            assert list(content) == ["application/problem+json"], operation["operationId"]


def test_an_unknown_api_path_is_a_problem_not_a_page(acme, make_token):
    response = ApiClient(make_token(acme)[1]).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
