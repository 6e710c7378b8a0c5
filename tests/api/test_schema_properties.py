"""Property-based tests of every operation of the OpenAPI schema (README, "API"), with
Schemathesis (https://schemathesis.readthedocs.io/) against the live application: pytest-
django's live server, a real HTTP server on a socket in a thread of this process, reached
over real HTTP with a manager token of Acme's.

For each operation Schemathesis generates requests from the schema (path ids, filters,
JSON and multipart bodies) and checks every answer: never a 5xx, a status code and a
content type the schema declares, a body matching the schema. Schemathesis' pytest
integration (from_fixture) does not run under the suite's pytest 9, so the test draws each
operation's cases itself with Hypothesis (`operation.as_strategy()`). A channel, a
certificate and a pending CSR exist, so that small ids sometimes name real objects. EXAMPLES
per operation keep the run to a couple of minutes."""

import pytest
import schemathesis
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

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def token_headers(acme, alice, make_token, make_certificate, settings):
    settings.CERTMGR_API_THROTTLE_RATE = ""
    # *Check now* and *Verify now* on a real channel look up DNS and fetch HTTP: quickly
    # refused on loopback, never out to the internet.
    settings.CERTMGR_DNS_RESOLVERS = ["127.0.0.1:9"]
    settings.CERTMGR_DNS_TIMEOUT = 0.5
    settings.CERTMGR_PROBE_TIMEOUT = 0.5
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


def test_every_operation_answers_as_its_schema_says_and_never_with_a_5xx(
    live_server, token_headers
):
    schema = schemathesis.openapi.from_url(
        live_server.url + reverse("api:schema") + "?format=json", headers=token_headers
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    failures = []
    for operation in operations:
        failures += operation_failures(operation, base_url=live_server.url, headers=token_headers)

    assert len(operations) >= 24
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:20])
