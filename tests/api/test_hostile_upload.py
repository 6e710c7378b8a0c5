"""The hostile-upload corpus through the API's uploads (README, "API"), as a manager token of
Acme: every file of cryptography-vectors' x509/, pkcs12/, pkcs7/ and asymmetric/ folders and
the PEM-armour garbage of tests/certificates/test_hostile_upload.py, in every role the API
takes a file in (SSL certificate, key and chain; Apple Pay .p12; Apple's answer to a CSR;
the identity proof). Never a 5xx: a 400 problem whose field errors name the file's own
field, a 201 that stored exactly one certificate, or a 413 problem for a body over the cap;
and each within the same CPU bound as the pages."""

import pytest
from django.urls import reverse

from certificates import services
from certificates.bundle import UNEXPECTED_FAILURE_MESSAGE
from certificates.models import CertificateRequest
from tests.api.conftest import ApiClient
from tests.certificates import test_hostile_upload as page_hostile
from tests.certificates.test_hostile_upload import (
    CORPUS_FOLDERS,
    MERCHANT,
    TOO_LARGE_PAGE_TITLE,
    Role,
    RoleUrls,
    Uploads,
    corpus_folder_send,
    corpus_once,
    garbage_pem_files,
    roles_make,
)

pytestmark = pytest.mark.django_db


# The pages' fixture: a valid leaf and its key, for the fields around the file under test.
valid = page_hostile.valid


class MultipartClient:
    """Posts multipart bodies with the token, as an integration uploads files."""

    def __init__(self, api: ApiClient):
        self.api = api

    def post(self, url, data):
        return self.api.post(url, data, json=False)


def api_urls(request: CertificateRequest) -> RoleUrls:
    """The API's uploads, in the pages' roles (so CORPUS_ROLES applies): no institution
    field, the token's is implied."""
    return RoleUrls(
        ssl=reverse("api:certificate_list"),
        apple=reverse("api:merchant_identity_upload"),
        request_complete=reverse("api:csr_complete", args=[request.pk]),
        proof=reverse("api:identity_proof_upload"),
    )


class ApiUploads(Uploads):
    accepted_status = 201

    def fresh_page(self) -> None:
        """The API keeps nothing between uploads (no session): each is judged on its own."""

    def _problem(self, role: Role, response) -> str:
        if response.status_code == 201:
            self._count("accepted")
            return ""
        if response.status_code == 413:
            self._count("413")
            if response["Content-Type"] != "application/problem+json":
                return f"413 as {response['Content-Type']}"
            detail = response.json()["detail"]
            return "" if detail.startswith(TOO_LARGE_PAGE_TITLE) else "bare 413"
        if response.status_code != 400:
            return f"status {response.status_code}"
        if response["Content-Type"] != "application/problem+json":
            return f"400 as {response['Content-Type']}"
        self._count("refused")
        errors = response.json().get("errors") or {}
        if not errors:
            return "answered 400 without any field error"
        if any(UNEXPECTED_FAILURE_MESSAGE in message for m in errors.values() for message in m):
            return f"the parser failed unexpectedly: {errors}"
        misplaced = {name: errors[name] for name in errors if name not in role.fields}
        return f"errors on other fields: {misplaced}" if misplaced else ""


@pytest.fixture
def uploads(acme, alice, acme_api, valid, settings):
    settings.CERTMGR_API_THROTTLE_RATE = ""  # thousands of uploads from one token
    request = services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_MERCHANT_IDENTITY,
        merchant_identifier=MERCHANT,
        name="hostile request",
        actor=alice,
    )
    return ApiUploads(client=MultipartClient(acme_api), roles=roles_make(valid, api_urls(request)))


@corpus_once
@pytest.mark.parametrize("folder", CORPUS_FOLDERS)
def test_every_corpus_file_in_every_api_role_is_a_field_error_never_a_5xx(uploads, folder):
    count = corpus_folder_send(uploads, folder)
    uploads.assert_clean(f"API: cryptography-vectors {folder}/ ({count} files)")


def test_pem_armour_around_garbage_in_every_api_role(uploads, valid):
    for label, data in garbage_pem_files(valid).items():
        uploads.send_all(data, label)
    uploads.assert_clean("API: PEM armour around garbage")
    assert uploads.outcomes.get("refused", 0) > 50


def test_a_body_over_the_cap_is_a_413_problem(uploads):
    role = uploads.roles[0]
    uploads.send(role, b"0" * (2 * 1024 * 1024), "2 MiB of zeros")
    assert uploads.outcomes == {"413": 1}
    assert not uploads.failures
