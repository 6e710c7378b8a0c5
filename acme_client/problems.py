"""What an ACME CA answered, as a typed finding (README, "Onboarding a hostname").

An order that fails ends in an exception from `acme_client.protocol` (or from `requests`
underneath it); `failure_finding` turns it into a `saleschannels.findings.Finding` of
`Check.ACME`, whose words and advice are said the same way everywhere. The CA's own text (a
problem's "detail", an exception message) never goes into the finding's parameters: it is
returned apart, as `AcmeOutcome.detail`, for the log and the staff.

Problem types are those of RFC 8555, section 6.7
(https://www.rfc-editor.org/rfc/rfc8555#section-6.7); `AcmeProblem.code` and
`AcmeFailure.code` hold their short names ("rateLimited", "caa", ...).

No Django here: settings such as the CA's CAA identity come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from acme import errors as acme_errors
from acme import messages

from saleschannels.findings import Check, Finding, Reason

from . import protocol

# `AcmeFailure.code` that services.py may set for a certificate that failed certmgr's own
# checks (not an RFC 8555 problem type; RFC 8555 has none for this).
BAD_CERTIFICATE = "badCertificate"

_PROBLEM_PREFIX = "urn:ietf:params:acme:error:"

# The problem types RFC 8555 registers (section 6.7 and its IANA registry, section 9.7.4),
# plus "dnssec" and "unknownHost" that the `acme` library also knows. Only these short names
# are ever put into a finding: they are certmgr's vocabulary, not text the CA made up.
_KNOWN_CODES = frozenset(
    {
        "accountDoesNotExist",
        "alreadyRevoked",
        "badCSR",
        "badNonce",
        "badPublicKey",
        "badRevocationReason",
        "badSignatureAlgorithm",
        "caa",
        "compound",
        "connection",
        "dns",
        "dnssec",
        "externalAccountRequired",
        "incorrectResponse",
        "invalidContact",
        # draft-ietf-acme-profiles: the order named a profile the CA does not offer.
        "invalidProfile",
        "malformed",
        "orderNotReady",
        "rateLimited",
        "rejectedIdentifier",
        "serverInternal",
        "tls",
        "unauthorized",
        "unknownHost",
        "unsupportedContact",
        "unsupportedIdentifier",
        "userActionRequired",
    }
)

_BY_CODE: dict[str, Reason] = {
    "rateLimited": Reason.ACME_RATE_LIMITED,
    "caa": Reason.ACME_CAA,
    "dns": Reason.ACME_DNS,
    "dnssec": Reason.ACME_DNS,
    "unknownHost": Reason.ACME_DNS,
    "connection": Reason.ACME_CONNECTION,
    "tls": Reason.ACME_CONNECTION,
    "unauthorized": Reason.ACME_UNAUTHORIZED,
    "incorrectResponse": Reason.ACME_UNAUTHORIZED,
    "serverInternal": Reason.ACME_SERVER_INTERNAL,
    "rejectedIdentifier": Reason.ACME_REJECTED_IDENTIFIER,
    "externalAccountRequired": Reason.ACME_EXTERNAL_ACCOUNT,
    "invalidProfile": Reason.ACME_INVALID_PROFILE,
    BAD_CERTIFICATE: Reason.ACME_BAD_CERTIFICATE,
}

# How protocol.py and services.py say what has no problem type (their messages are fixed:
# tests assert them). A passed deadline is an AcmeFailure with one of the first three.
_DEADLINE_MESSAGES = (
    "The CA asked to wait ",
    "The CA did not issue the certificate in time",
    "The CA did not validate the challenge in time",
)
_NO_HTTP01_MESSAGE = "The CA offers no HTTP-01 challenge"
_BAD_CERTIFICATE_MESSAGE = "The CA's certificate did not pass the checks"


@dataclass(frozen=True)
class CaName:
    """A CA as people know it: its name, whether it is a test CA, its directory's host."""

    name: str
    staging: bool
    host: str


# Directory hosts of the CAs certmgr knows, each from the CA's own documentation.
_KNOWN_CAS: dict[str, tuple[str, bool]] = {
    # https://letsencrypt.org/docs/acme-protocol-updates/ (production and staging endpoints),
    # https://letsencrypt.org/docs/staging-environment/
    "acme-v02.api.letsencrypt.org": ("Let's Encrypt", False),
    "acme-staging-v02.api.letsencrypt.org": ("Let's Encrypt (staging)", True),
    # https://zerossl.com/documentation/acme/ ("https://acme.zerossl.com/v2/DV90")
    "acme.zerossl.com": ("ZeroSSL", False),
    # https://cloud.google.com/certificate-manager/docs/public-ca-tutorial
    # ("https://dv.acme-v02.api.pki.goog/directory", staging
    # "https://dv.acme-v02.test-api.pki.goog/directory")
    "dv.acme-v02.api.pki.goog": ("Google Trust Services", False),
    "dv.acme-v02.test-api.pki.goog": ("Google Trust Services (staging)", True),
    # https://community.buypass.com/t/63d4ay/buypass-go-ssl-endpoints
    # ("https://api.buypass.com/acme/directory",
    # test environment "https://api.test4.buypass.no/acme/directory")
    "api.buypass.com": ("Buypass", False),
    "api.test4.buypass.no": ("Buypass (staging)", True),
    # https://www.ssl.com/guide/ssl-tls-certificate-issuance-and-revocation-with-acme/
    # ("https://acme.ssl.com/sslcom-dv-rsa", "https://acme.ssl.com/sslcom-dv-ecc")
    "acme.ssl.com": ("SSL.com", False),
}
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PEBBLE_NAME = "Pebble (test CA)"


def ca_describe(directory_url: str) -> CaName:
    """The CA behind an ACME directory URL, by the URL's host name.

    A local Pebble (https://github.com/letsencrypt/pebble) - on localhost or a host whose name
    contains "pebble" - is a test CA; an unknown CA is named by its host.
    """
    url = directory_url.strip()
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        host = ""
    host = host.rstrip(".")
    known = _KNOWN_CAS.get(host)
    if known is not None:
        return CaName(name=known[0], staging=known[1], host=host)
    if host in _LOCAL_HOSTS or "pebble" in host:
        return CaName(name=PEBBLE_NAME, staging=True, host=host)
    return CaName(name=host or url or "no directory URL", staging=False, host=host)


@dataclass(frozen=True)
class AcmeOutcome:
    """A failed order: the finding to show, when the CA allows a new try (seconds, from its
    Retry-After, or None), and the raw message for the log and the staff only."""

    finding: Finding
    retry_after: float | None
    detail: str


def failure_finding(
    error: BaseException, *, directory_url: str, caa_identity: str = "letsencrypt.org"
) -> AcmeOutcome:
    """The finding for an order that ended in `error` (see the module docstring).

    `caa_identity` is the CA's issuer domain name for CAA (RFC 8659,
    https://www.rfc-editor.org/rfc/rfc8659#section-4.2), said in the advice of ACME_CAA;
    callers pass the first of settings.ACME_CAA_IDENTITIES.
    """
    reason, code = _classify(error)
    params: dict = {"ca": ca_describe(directory_url).name}
    if reason is Reason.ACME_CAA:
        params["ca_identity"] = caa_identity
    if reason is Reason.ACME_OTHER:
        params["code"] = code
    return AcmeOutcome(
        finding=Finding(check=Check.ACME, reason=reason, params=params),
        retry_after=_retry_after(error),
        detail=_detail(error),
    )


def _classify(error: BaseException, depth: int = 0) -> tuple[Reason, str]:
    """The reason, and the short code said by ACME_OTHER."""
    if isinstance(error, protocol.AcmeProblem):
        return _by_problem(_problem_code(error), error.status)
    if isinstance(error, messages.Error):
        return _by_problem(_problem_code(error), 0)
    if isinstance(error, protocol.AcmeFailure):
        return _by_failure(error, depth)
    if isinstance(error, requests.Timeout | TimeoutError | acme_errors.TimeoutError):
        return Reason.ACME_TIMEOUT, ""
    if isinstance(error, requests.ConnectionError | ConnectionError | OSError):
        return Reason.ACME_UNREACHABLE, ""
    return Reason.INTERNAL_ERROR, ""


def _by_problem(code: str, status: int) -> tuple[Reason, str]:
    reason = _BY_CODE.get(code)
    if reason is not None:
        return reason, code
    if status >= 500:
        return Reason.ACME_SERVER_INTERNAL, code
    if status == 429:  # Too Many Requests (RFC 6585) without a problem type
        return Reason.ACME_RATE_LIMITED, code
    if code:
        return Reason.ACME_OTHER, code
    return Reason.ACME_OTHER, f"HTTP {status}" if status else "unknown"


def _by_failure(error: protocol.AcmeFailure, depth: int) -> tuple[Reason, str]:
    code = _short(getattr(error, "code", "") or "")
    if code:
        return _by_problem(code, 0)
    message = str(error)
    if message.startswith(_BAD_CERTIFICATE_MESSAGE):
        return Reason.ACME_BAD_CERTIFICATE, ""
    if message.startswith(_DEADLINE_MESSAGES):
        return Reason.ACME_TIMEOUT, ""
    cause = error.__cause__
    if cause is not None and depth < 5:  # "The CA could not be reached (...)" and the like
        return _classify(cause, depth + 1)
    if message.startswith(_NO_HTTP01_MESSAGE):
        # The CA validates this name by other means only; certmgr proves control over HTTP-01
        # only, so for certmgr the CA does not issue for it.
        return Reason.ACME_REJECTED_IDENTIFIER, ""
    # The CA refused without a problem type certmgr knows.
    return Reason.ACME_OTHER, "unknown"


def _problem_code(problem: protocol.AcmeProblem | messages.Error) -> str:
    """The short problem type; a "compound" problem is said by its first known subproblem."""
    cause = problem if isinstance(problem, messages.Error) else problem.__cause__
    code = _short(getattr(problem, "code", None) or "")
    if not code and isinstance(cause, messages.Error):
        code = _short(str(cause.typ or ""))
    if code == "compound" and isinstance(cause, messages.Error):
        for subproblem in cause.subproblems or ():
            subcode = _short(str(subproblem.typ or ""))
            if subcode in _BY_CODE:
                return subcode
    return code


def _short(code: str) -> str:
    """A known short problem type from a short name or a full URN; "" for anything else."""
    code = code.removeprefix(_PROBLEM_PREFIX)
    return code if code in _KNOWN_CODES or code == BAD_CERTIFICATE else ""


def _retry_after(error: BaseException) -> float | None:
    """The Retry-After the CA sent with the problem, following the chain of causes."""
    seen = 0
    while error is not None and seen < 5:
        value = getattr(error, "retry_after", None)
        if isinstance(value, int | float):
            return float(value)
        error = error.__cause__
        seen += 1
    return None


def _detail(error: BaseException) -> str:
    """The raw message, worded as services._failure_words words it."""
    if isinstance(error, protocol.AcmeFailure | protocol.AcmeProblem):
        return str(error)
    if isinstance(error, OSError | ConnectionError):
        return f"The CA could not be reached: {error}"
    return f"Unexpected error: {error.__class__.__name__}: {error}"
