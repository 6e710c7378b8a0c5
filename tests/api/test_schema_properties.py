"""Property-based tests of every operation of the OpenAPI schema (README, "API"), with
Schemathesis (https://schemathesis.readthedocs.io/) against the live application: a web
process of its own on this test's database (tests/web.py: gunicorn, as in production),
reached over real HTTP with a manager token of Acme's.

For each operation Schemathesis generates requests from the schema (path ids, filters,
JSON and multipart bodies) and checks every answer: never a 5xx, a status code and a
content type the schema declares, a body matching the schema. Schemathesis' pytest
integration (from_fixture) does not run under the suite's pytest 9, so the test draws each
operation's cases itself with Hypothesis (`operation.as_strategy()`). A channel, a
certificate and a pending CSR exist, so that small ids sometimes name real objects. EXAMPLES
per operation keep the run to a couple of minutes."""

import pytest
import schemathesis
from django.conf import settings
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from certificates import services as certificate_services
from certificates.models import CertificateRequest
from saleschannels import services as channel_services
from tests.celery_worker import database_url
from tests.web import web_run

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def token_headers(acme, alice, make_token, make_certificate):
    make_certificate(acme, hostnames=("shop.acme.test",))
    channel_services.channel_create(
        institution=acme, name="Shop", hostname="shop.acme.test", actor=alice
    )
    certificate_services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_MERCHANT_IDENTITY,
        merchant_identifier="merchant.test.acme",
        name="Pending",
        actor=alice,
    )
    _, secret = make_token(acme, role="manager", name="schemathesis")
    return {"Authorization": f"Bearer {secret}"}


def operation_failures(operation, *, base_url: str, headers: dict) -> list[str]:
    """Run EXAMPLES generated requests of one operation; what went wrong, in words."""
    failures = []

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
        except (AssertionError, FailureGroup) as failure:
            failures.append(f"{operation.label}: {str(failure)[:2000]}")

    run()
    return failures


def web_env(tmp_path) -> dict[str, str]:
    """The web process's settings: this test's database and secrets; no request budget;
    *Check now*, *Verify now* and the CA's directory refused at once on loopback, never
    asked of the internet."""
    return {
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "CERTMGR_ENCRYPTION_KEYS": ",".join(settings.CERTMGR_ENCRYPTION_KEYS),
        "CERTMGR_VAR_DIR": str(tmp_path / "web-var"),
        "CERTMGR_EDGE_DIR": str(tmp_path / "edge"),
        "CERTMGR_API_THROTTLE_RATE": "",
        "CERTMGR_DNS_RESOLVERS": "127.0.0.1:9",
        "CERTMGR_DNS_TIMEOUT": "0.5",
        "CERTMGR_PROBE_TIMEOUT": "0.5",
        "ACME_DIRECTORY_URL": "http://127.0.0.1:9/directory",
    }


def test_every_operation_answers_as_its_schema_says_and_never_with_a_5xx(tmp_path, token_headers):
    with web_run(env=web_env(tmp_path), workdir=tmp_path / "web") as web:
        schema = schemathesis.openapi.from_url(
            web.url + reverse("api:schema") + "?format=json", headers=token_headers
        )
        operations = [result.ok() for result in schema.get_all_operations()]
        failures = []
        for operation in operations:
            failures += operation_failures(operation, base_url=web.url, headers=token_headers)
        answered = web.requests_logged("/api/v1/")

    assert len(operations) >= 24
    assert len(answered) > len(operations) * EXAMPLES // 2  # the server really answered them
    assert not [request for request in answered if request[1] >= 500]
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:20])
