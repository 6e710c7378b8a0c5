"""What a CA answers, as typed findings (acme_client/problems.py): every RFC 8555 problem type
certmgr tells apart, the errors underneath (network, deadline), the CAs' names, and two real
answers - a rate limit through the fault proxy, a failed HTTP-01 validation from Pebble."""

import pytest
import requests
from acme import messages

from acme_client import problems, protocol
from saleschannels.findings import Check, Reason
from tests.acme_fault_proxy import acme_fault_proxy_run

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


def problem(code: str, status: int = 400, retry_after: float | None = None, detail: str = ""):
    """An AcmeProblem as protocol._Network raises it: chained to the library's error."""
    error = protocol.AcmeProblem(
        detail or f"urn:ietf:params:acme:error:{code} :: something the CA said",
        code=code if code in messages.ERROR_CODES else "",
        status=status,
        retry_after=retry_after,
    )
    error.__cause__ = messages.Error(typ=f"urn:ietf:params:acme:error:{code}", detail=detail)
    return error


def outcome(error, **kwargs):
    return problems.failure_finding(error, directory_url=LETS_ENCRYPT, **kwargs)


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("rateLimited", 429, Reason.ACME_RATE_LIMITED),
        ("caa", 403, Reason.ACME_CAA),
        ("dns", 400, Reason.ACME_DNS),
        ("dnssec", 400, Reason.ACME_DNS),
        ("connection", 400, Reason.ACME_CONNECTION),
        ("tls", 400, Reason.ACME_CONNECTION),
        ("unauthorized", 403, Reason.ACME_UNAUTHORIZED),
        ("incorrectResponse", 403, Reason.ACME_UNAUTHORIZED),
        ("serverInternal", 500, Reason.ACME_SERVER_INTERNAL),
        ("rejectedIdentifier", 400, Reason.ACME_REJECTED_IDENTIFIER),
        ("externalAccountRequired", 403, Reason.ACME_EXTERNAL_ACCOUNT),
    ],
)
def test_each_problem_type_has_its_reason(code, status, reason):
    result = outcome(problem(code, status))
    assert result.finding.check == Check.ACME
    assert result.finding.reason == reason
    assert result.finding.params["ca"] == "Let's Encrypt"
    assert "code" not in result.finding.params


@pytest.mark.parametrize("code", ["malformed", "badCSR", "badNonce", "userActionRequired"])
def test_other_problem_types_are_said_by_their_short_code(code):
    finding = outcome(problem(code, 400)).finding
    assert finding.reason == Reason.ACME_OTHER
    assert finding.params == {"ca": "Let's Encrypt", "code": code}
    assert finding.words == f"The CA (Let's Encrypt) refused the order ({code})."


def test_the_cas_detail_stays_out_of_the_finding_and_goes_to_the_detail():
    said = "Error creating new order :: <script>alert(1)</script>"
    result = outcome(problem("malformed", detail=said))
    assert said not in repr(result.finding.as_dict())
    assert said in result.detail


def test_a_problem_type_no_one_registered_is_not_repeated():
    error = protocol.AcmeProblem("vendor trouble", status=400)
    error.__cause__ = messages.Error(typ="https://ca.example/problems/our-own", detail="x")
    assert outcome(error).finding.params == {"ca": "Let's Encrypt", "code": "HTTP 400"}


def test_a_server_error_without_problem_type_is_the_cas_internal_error():
    error = protocol.AcmeProblem("the CA answered HTTP 503", status=503, retry_after=30)
    result = outcome(error)
    assert result.finding.reason == Reason.ACME_SERVER_INTERNAL
    assert result.retry_after == 30.0
    assert result.finding.words == "The CA (Let's Encrypt) had an internal error."


def test_a_429_without_problem_type_is_a_rate_limit():
    result = outcome(protocol.AcmeProblem("the CA answered HTTP 429", status=429))
    assert result.finding.reason == Reason.ACME_RATE_LIMITED
    assert result.retry_after is None


def test_a_rate_limit_keeps_the_retry_after_and_says_so():
    result = outcome(problem("rateLimited", 429, retry_after=3600))
    assert result.retry_after == 3600.0
    assert result.finding.words == (
        "The CA (Let's Encrypt) refused the order: a rate limit was reached."
    )
    assert result.finding.advice == "Nothing to do: the platform tries again when the CA allows."


def test_a_caa_refusal_advises_the_cas_identity():
    finding = outcome(problem("caa", 403), caa_identity="sectigo.com").finding
    assert finding.params == {"ca": "Let's Encrypt", "ca_identity": "sectigo.com"}
    assert finding.words == (
        "The CA (Let's Encrypt) refused: the hostname's CAA records do not allow it."
    )
    assert finding.advice == 'Add a CAA record for the hostname: 0 issue "sectigo.com".'


def test_a_caa_refusal_names_letsencrypt_by_default():
    assert outcome(problem("caa", 403)).finding.params["ca_identity"] == "letsencrypt.org"


def test_a_compound_problem_is_said_by_its_subproblem():
    error = protocol.AcmeProblem("compound", code="compound", status=403)
    error.__cause__ = messages.Error(
        typ="urn:ietf:params:acme:error:compound",
        subproblems=(
            messages.Error(typ="urn:ietf:params:acme:error:malformed"),
            messages.Error(typ="urn:ietf:params:acme:error:caa"),
        ),
    )
    assert outcome(error).finding.reason == Reason.ACME_CAA


# A failed challenge, authorization or order: protocol raises AcmeFailure with the code.


def test_a_failed_challenge_is_said_by_its_problem_type():
    error = protocol.AcmeFailure(
        "The CA could not validate shop.example.test: DNS problem: NXDOMAIN (dns)", code="dns"
    )
    result = outcome(error)
    assert result.finding.reason == Reason.ACME_DNS
    assert result.finding.words == "The CA (Let's Encrypt) could not look the hostname up in DNS."
    assert result.detail == str(error)


def test_a_refused_order_with_a_code_certmgr_does_not_tell_apart():
    error = protocol.AcmeFailure("The CA refused the order: bad (badCSR)", code="badCSR")
    assert outcome(error).finding.params == {"ca": "Let's Encrypt", "code": "badCSR"}


def test_a_refused_order_without_a_code():
    error = protocol.AcmeFailure("The CA refused the order: no reason given")
    assert outcome(error).finding.params == {"ca": "Let's Encrypt", "code": "unknown"}


@pytest.mark.parametrize(
    "message",
    [
        "The CA asked to wait 3600 s (new order), longer than the time left.",
        "The CA did not issue the certificate in time.",
        "The CA did not validate the challenge in time.",
    ],
)
def test_a_passed_deadline_is_a_timeout(message):
    finding = outcome(protocol.AcmeFailure(message)).finding
    assert finding.reason == Reason.ACME_TIMEOUT
    assert finding.words == "The CA (Let's Encrypt) did not finish the order in time."


def test_a_ca_that_stayed_unreachable():
    try:
        try:
            raise requests.ConnectionError("Connection refused")
        except requests.ConnectionError as cause:
            raise protocol.AcmeFailure(
                f"The CA could not be reached (directory): {cause}"
            ) from cause
    except protocol.AcmeFailure as error:
        result = outcome(error)
    assert result.finding.reason == Reason.ACME_UNREACHABLE
    assert result.finding.words == "The CA (Let's Encrypt) could not be reached."
    assert result.detail == "The CA could not be reached (directory): Connection refused"


def test_a_ca_that_stayed_silent():
    error = protocol.AcmeFailure("The CA could not be reached (poll): read timed out")
    error.__cause__ = requests.ReadTimeout("read timed out")
    assert outcome(error).finding.reason == Reason.ACME_TIMEOUT


def test_no_http01_challenge():
    error = protocol.AcmeFailure("The CA offers no HTTP-01 challenge for shop.example.test.")
    assert outcome(error).finding.reason == Reason.ACME_REJECTED_IDENTIFIER


def test_a_certificate_that_failed_the_checks():
    error = protocol.AcmeFailure("The CA's certificate did not pass the checks: expired")
    finding = outcome(error).finding
    assert finding.reason == Reason.ACME_BAD_CERTIFICATE
    assert finding.words == (
        "The certificate the CA (Let's Encrypt) issued did not pass the platform's checks."
    )


def test_a_certificate_that_failed_the_checks_by_its_code():
    error = protocol.AcmeFailure("whatever", code=problems.BAD_CERTIFICATE)
    assert outcome(error).finding.reason == Reason.ACME_BAD_CERTIFICATE


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (requests.ConnectionError("refused"), Reason.ACME_UNREACHABLE),
        (requests.exceptions.SSLError("bad certificate"), Reason.ACME_UNREACHABLE),
        (ConnectionResetError("reset"), Reason.ACME_UNREACHABLE),
        (OSError("no route to host"), Reason.ACME_UNREACHABLE),
        (requests.ConnectTimeout("connect timeout"), Reason.ACME_TIMEOUT),
        (requests.ReadTimeout("read timeout"), Reason.ACME_TIMEOUT),
        (TimeoutError("timed out"), Reason.ACME_TIMEOUT),
        (ValueError("boom"), Reason.INTERNAL_ERROR),
        (KeyError("newOrder"), Reason.INTERNAL_ERROR),
    ],
)
def test_errors_underneath_the_protocol(error, reason):
    result = outcome(error)
    assert result.finding.reason == reason
    assert result.finding.params == {"ca": "Let's Encrypt"}
    assert result.retry_after is None


def test_an_unexpected_error_is_said_without_its_message():
    result = outcome(ValueError("secret internals"))
    assert result.finding.words == (
        "The platform hit an unexpected error; its staff can see the details."
    )
    assert result.detail == "Unexpected error: ValueError: secret internals"


# The CAs' names.


@pytest.mark.parametrize(
    ("url", "name", "staging"),
    [
        (LETS_ENCRYPT, "Let's Encrypt", False),
        ("https://acme-staging-v02.api.letsencrypt.org/directory", "Let's Encrypt (staging)", True),
        ("https://acme.zerossl.com/v2/DV90", "ZeroSSL", False),
        ("https://dv.acme-v02.api.pki.goog/directory", "Google Trust Services", False),
        (
            "https://dv.acme-v02.test-api.pki.goog/directory",
            "Google Trust Services (staging)",
            True,
        ),
        ("https://api.buypass.com/acme/directory", "Buypass", False),
        ("https://api.test4.buypass.no/acme/directory", "Buypass (staging)", True),
        ("https://acme.ssl.com/sslcom-dv-ecc", "SSL.com", False),
        ("https://ACME-V02.API.LETSENCRYPT.ORG./directory", "Let's Encrypt", False),
        ("https://localhost:14000/dir", "Pebble (test CA)", True),
        ("https://127.0.0.1:14000/dir", "Pebble (test CA)", True),
        ("https://[::1]:14000/dir", "Pebble (test CA)", True),
        ("https://pebble:14000/dir", "Pebble (test CA)", True),
        ("https://acme.pebble.internal/dir", "Pebble (test CA)", True),
        ("https://ca.example.com/acme/directory", "ca.example.com", False),
    ],
)
def test_ca_names(url, name, staging):
    ca = problems.ca_describe(url)
    assert (ca.name, ca.staging) == (name, staging)


def test_ca_host():
    assert problems.ca_describe("https://localhost:14000/dir").host == "localhost"
    assert problems.ca_describe("https://[::1]:14000/dir").host == "::1"
    assert problems.ca_describe(LETS_ENCRYPT).host == "acme-v02.api.letsencrypt.org"


def test_ca_names_of_odd_urls():
    assert problems.ca_describe("acme.zerossl.com/v2/DV90").name == "ZeroSSL"
    assert problems.ca_describe("https://[::1/dir").name == "https://[::1/dir"
    assert problems.ca_describe("").name == "no directory URL"


def test_the_finding_names_the_ca_of_the_directory():
    finding = problems.failure_finding(
        problem("serverInternal", 500), directory_url="https://acme.zerossl.com/v2/DV90"
    ).finding
    assert finding.words == "The CA (ZeroSSL) had an internal error."


# Real answers: a rate limit through the fault proxy in front of Pebble, and Pebble's own
# refusal of an HTTP-01 challenge nobody answers.

RATE_LIMITED = {
    "type": "urn:ietf:params:acme:error:rateLimited",
    "detail": "too many new orders recently",
}


def _client(directory_url: str, ca_bundle, deadline):
    acme = protocol.client_open(
        directory_url=directory_url,
        account_key=protocol.account_key_generate(),
        ca_bundle=str(ca_bundle),
        deadline=deadline,
    )
    protocol.account_register(acme, deadline=deadline)
    return acme


def _obtain(acme, deadline):
    protocol.certificate_obtain(
        acme,
        hostname="shop.acme.test",
        key_pem=protocol.certificate_key_generate(),
        deadline=deadline,
        challenge_publish=lambda token, key_authorization: None,  # never answered
        challenge_withdraw=lambda token: None,
    )


@pytest.mark.django_db(transaction=True)
def test_a_rate_limit_from_the_fault_proxy(pebble, tmp_path):
    with acme_fault_proxy_run(upstream=pebble, workdir=tmp_path / "proxy") as proxy:
        deadline = protocol.deadline_in(60)
        acme = _client(proxy.directory_url, proxy.ca_bundle, deadline)
        # More 429s than the client retries: the last one comes through.
        proxy.fail_next(
            "order-plz",
            429,
            RATE_LIMITED,
            retry_after=1,
            times=protocol.TRANSIENT_ATTEMPTS + 1,
            method="POST",
        )
        with pytest.raises(protocol.AcmeProblem) as raised:
            _obtain(acme, deadline)
        result = problems.failure_finding(raised.value, directory_url=proxy.directory_url)
    assert result.finding.reason == Reason.ACME_RATE_LIMITED
    assert result.retry_after == 1.0
    assert result.finding.words == (
        "The CA (Pebble (test CA)) refused the order: a rate limit was reached."
    )
    assert "too many new orders recently" in result.detail
    assert "too many new orders recently" not in repr(result.finding.as_dict())


@pytest.mark.django_db(transaction=True)
def test_a_challenge_pebble_could_not_validate(pebble):
    deadline = protocol.deadline_in(60)
    acme = _client(pebble.directory_url, pebble.ca_bundle, deadline)
    with pytest.raises(protocol.AcmeFailure) as raised:
        _obtain(acme, deadline)
    assert raised.value.code == "unauthorized"
    assert str(raised.value).startswith("The CA could not validate shop.acme.test: ")
    result = problems.failure_finding(raised.value, directory_url=pebble.directory_url)
    assert result.finding.reason == Reason.ACME_UNAUTHORIZED
    assert result.finding.words == (
        "The CA (Pebble (test CA)) fetched the validation token and got a wrong answer."
    )
