"""The ACME (RFC 8555) workflow on top of the `acme` and `josepy` libraries (no Django here).

The steps follow the RFC, one helper each: account -> order -> HTTP-01 challenge -> poll ->
finalize -> download. Two things differ from the library's conveniences, on purpose:

- Polling: `ClientV2.poll_and_finalize` sleeps a fixed second per poll, which is most of the
  time an order takes against a fast CA. Here polls start at 50 ms and grow by half each time
  (capped at 2 s), honour the server's Retry-After, and stop at an overall deadline.
- Retries: the library retries a `badNonce` once; a CA may reject several nonces in a row
  (Pebble rejects 5 % by default). Every request here is retried on badNonce several times,
  and on 429 / 5xx after the Retry-After the CA asks for (bounded by the deadline).

Challenges are published through a callback so that the caller can store them where every
web process can answer them (the database).

ACME Renewal Information (RFC 9773, https://www.rfc-editor.org/rfc/rfc9773) is asked for
with `renewal_info` (the window and the Retry-After, section 4), and a renewal order names the
certificate it replaces (`replaces`, section 5), dropped once if the CA refuses it. A
directory's `meta.profiles` (https://datatracker.ietf.org/doc/draft-ietf-acme-profiles/) is
read with `directory_client` and `directory_profiles`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TypeVar

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from acme.client import _renewal_info_path_component
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

logger = logging.getLogger(__name__)

USER_AGENT = "certmgr"
NONCE_ATTEMPTS = 8
TRANSIENT_ATTEMPTS = 5
POLL_FIRST = 0.05
POLL_GROWTH = 1.5
POLL_MAX = 2.0

T = TypeVar("T")


class AcmeProblem(Exception):
    """An ACME server answered with an error; carries what is needed to decide on a retry."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        status: int = 0,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.code == "badNonce" or self.status == 429 or self.status >= 500


class AcmeFailure(Exception):
    """The order could not be completed; the message says why in plain words.

    `code` is the short name of the RFC 8555 problem type of the challenge or order error
    behind it ("caa", "dns", ...; https://www.rfc-editor.org/rfc/rfc8555#section-6.7), or "".
    """

    def __init__(self, message: str, *, code: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        # When the CA asked to wait longer than the order's time left (a rate limit).
        self.retry_after = retry_after


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds, from either of its forms (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _problem_type(problem: messages.Error) -> str:
    """The short name of a problem type, also of those the `acme` library does not list
    (RFC 9773's "alreadyReplaced", the profiles draft's "invalidProfile")."""
    if problem.code:
        return problem.code
    typ = str(problem.typ or "")
    return typ.removeprefix(messages.ERROR_PREFIX) if typ.startswith(messages.ERROR_PREFIX) else ""


class _Network(client.ClientNetwork):
    """ClientNetwork whose errors keep the HTTP status and Retry-After of the response."""

    @classmethod
    def _check_response(cls, response, content_type=None):
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as problem:
            raise AcmeProblem(
                str(problem),
                code=_problem_type(problem),
                status=response.status_code,
                retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
            ) from problem
        except errors.ClientError as error:
            raise AcmeProblem(
                f"the CA answered HTTP {response.status_code}",
                status=response.status_code,
                retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
            ) from error


def _call(action: Callable[[], T], *, deadline: datetime, what: str) -> T:
    """Run one ACME request, retrying what a CA expects clients to retry."""
    nonce_failures = 0
    transient_failures = 0
    while True:
        last_code = ""
        last_problem = None
        try:
            return action()
        except AcmeProblem as problem:
            last_code = problem.code or ("rateLimited" if problem.status == 429 else "")
            last_problem = problem
            if problem.code == "badNonce" and nonce_failures < NONCE_ATTEMPTS:
                nonce_failures += 1
                continue
            if not problem.transient or transient_failures >= TRANSIENT_ATTEMPTS:
                raise
            transient_failures += 1
            wait = problem.retry_after
            if wait is None:
                wait = min(0.5 * 2**transient_failures, 30.0)
        except (requests.ConnectionError, requests.Timeout) as error:
            remaining = (deadline - datetime.now(UTC)).total_seconds()
            wait = min(0.2 * 2 ** (transient_failures + 1), 5.0)
            if transient_failures >= TRANSIENT_ATTEMPTS or wait > remaining:
                # Unreachable, whether the attempts or the order's time ran out first.
                raise AcmeFailure(f"The CA could not be reached ({what}): {error}") from error
            transient_failures += 1
        remaining = (deadline - datetime.now(UTC)).total_seconds()
        if wait > remaining:
            # From the problem, whose detail says which of its limits the CA meant.
            raise AcmeFailure(
                f"The CA asked to wait {wait:.0f} s ({what}), longer than the time left.",
                code=last_code,
                retry_after=wait,
            ) from last_problem
        logger.info("ACME %s: retrying in %.2f s", what, wait)
        time.sleep(wait)


def _poll_intervals(deadline: datetime):
    """Sleep between polls: short and growing, never past the deadline."""
    interval = POLL_FIRST
    while True:
        remaining = (deadline - datetime.now(UTC)).total_seconds()
        if remaining <= 0:
            return
        yield min(interval, remaining)
        interval = min(interval * POLL_GROWTH, POLL_MAX)


def account_key_generate() -> jose.JWK:
    """A new account key: EC P-256 (ES256), small and fast to sign with."""
    return jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def account_key_pem(key: jose.JWK) -> bytes:
    return key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def account_key_load(pem: bytes) -> jose.JWK:
    return jose.JWK.load(pem)


def _alg(key: jose.JWK):
    return jose.ES256 if isinstance(key, jose.JWKEC) else jose.RS256


def client_open(
    *,
    directory_url: str,
    account_key: jose.JWK,
    account_uri: str | None = None,
    ca_bundle: str | bool = True,
    deadline: datetime,
) -> client.ClientV2:
    """An ACME client bound to the account (fetches the directory)."""
    account = messages.RegistrationResource(body={}, uri=account_uri) if account_uri else None
    network = _Network(
        account_key, account=account, alg=_alg(account_key), verify_ssl=ca_bundle,
        user_agent=USER_AGENT, timeout=30,
    )  # fmt: skip
    return client.ClientV2(_directory_get(network, directory_url, deadline=deadline), network)


def directory_client(
    *,
    directory_url: str,
    ca_bundle: str | bool = True,
    deadline: datetime,
    timeout: float = 30,
    retry: bool = True,
) -> client.ClientV2:
    """A client with no account, for what needs none: the directory and ARI's GETs.

    `retry=False` asks once, for a page that should not wait on a CA that does not answer.
    """
    network = _Network(None, verify_ssl=ca_bundle, user_agent=USER_AGENT, timeout=timeout)
    if retry:
        directory = _directory_get(network, directory_url, deadline=deadline)
    else:
        directory = messages.Directory.from_json(network.get(directory_url).json())
    return client.ClientV2(directory, network)


def directory_profiles(directory: messages.Directory) -> dict[str, str]:
    """The profiles a directory lists in `meta.profiles`, name -> description (empty when it
    lists none; https://datatracker.ietf.org/doc/draft-ietf-acme-profiles/)."""
    profiles = getattr(directory.meta, "profiles", None) or {}
    return {str(name): str(description or "") for name, description in profiles.items()}


def _directory_get(network: _Network, directory_url: str, *, deadline: datetime):
    return _call(
        lambda: messages.Directory.from_json(network.get(directory_url).json()),
        deadline=deadline,
        what="directory",
    )


def account_register(
    acme: client.ClientV2,
    *,
    email: str = "",
    eab_kid: str = "",
    eab_hmac_key: str = "",
    deadline: datetime,
) -> str:
    """Register (or find) the account for this key, agreeing to the terms; returns its URL."""
    eab = None
    if eab_kid and eab_hmac_key:
        eab = messages.ExternalAccountBinding.from_data(
            account_public_key=acme.net.key.public_key(),
            kid=eab_kid,
            hmac_key=eab_hmac_key,
            directory=acme.directory,
        )
    registration = messages.NewRegistration.from_data(
        email=email or None, terms_of_service_agreed=True, external_account_binding=eab
    )
    try:
        account = _call(lambda: acme.new_account(registration), deadline=deadline, what="account")
    except errors.ConflictError as existing:
        # The key already has an account: RFC 8555 answers with its URL.
        acme.net.account = messages.RegistrationResource(body={}, uri=existing.location)
        return existing.location
    return account.uri  # new_account() has bound the client to it


def certificate_key_generate(key_type: str = "ec256") -> bytes:
    """A fresh private key for one certificate, as PKCS#8 PEM (kept across renewals: keys.py)."""
    if key_type == "rsa2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif key_type == "ec256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unknown ACME_KEY_TYPE {key_type!r} (ec256 or rsa2048)")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Issued:
    order_url: str
    fullchain_pem: str
    # The ARI identifier the order carried as `replaces` ("" when it carried none).
    replaces: str = ""


def _http01(authorization: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challenge in authorization.body.challenges:
        if isinstance(challenge.chall, challenges.HTTP01):
            return challenge
    raise AcmeFailure(
        f"The CA offers no HTTP-01 challenge for {authorization.body.identifier.value}."
    )


def _problem_words(problem) -> str:
    if problem is None:
        return "no reason given"
    detail = getattr(problem, "detail", None) or ""
    code = getattr(problem, "code", None) or ""
    return f"{detail} ({code})" if code else detail or str(problem)


class _NewOrder(messages.NewOrder):
    """newOrder with RFC 9773's `replaces` (https://www.rfc-editor.org/rfc/rfc9773#section-5),
    which the `acme` library does not model."""

    replaces: str | None = jose.field("replaces", omitempty=True)


# Problem types with which a CA refuses the `replaces` of a newOrder (RFC 9773 section 5:
# "alreadyReplaced" for a certificate another order has replaced, with 409 Conflict; CAs say
# "malformed" for one they do not know or that is not the account's).
_REPLACES_REFUSED = frozenset({"alreadyReplaced", "malformed"})


def _replaces_refused(problem: AcmeProblem) -> bool:
    return problem.code in _REPLACES_REFUSED or problem.status == 409


def _order_place(
    acme: client.ClientV2,
    *,
    csr_pem: bytes,
    hostname: str,
    profile: str,
    deadline: datetime,
    replaces: str = "",
    replaces_withdrawn: Callable[[], None] = lambda: None,
) -> messages.OrderResource:
    """POST newOrder, then fetch its authorizations, each request retried on its own.

    `ClientV2.new_order` does both in one call, so retrying it after a rejected nonce on an
    authorization fetch would place a second order: one retry scope per request instead.

    With `replaces` (an ARI certificate identifier), a CA that refuses it (RFC 9773 section 5)
    is asked once more without it, and `replaces_withdrawn` is called: a renewal that cannot
    name its predecessor is still a renewal the shop needs.
    """
    fields = {"identifiers": [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=hostname)]}
    if profile:
        fields["profile"] = profile

    def place(payload):
        return _call(
            lambda: acme._post(acme.directory["newOrder"], payload),
            deadline=deadline,
            what="new order",
        )

    if replaces:
        try:
            response = place(_NewOrder(replaces=replaces, **fields))
        except AcmeProblem as problem:
            if not _replaces_refused(problem):
                raise
            logger.info("ACME new order: the CA refused replaces=%s, ordering without", replaces)
            replaces_withdrawn()
            response = place(_NewOrder(**fields))
    else:
        response = place(_NewOrder(**fields))
    body = messages.Order.from_json(response.json())
    authorizations = [
        acme._authzr_from_response(
            _call(lambda url=url: acme._post_as_get(url), deadline=deadline, what="authorization"),
            uri=url,
        )
        for url in body.authorizations
    ]
    return messages.OrderResource(
        body=body,
        uri=response.headers.get("Location"),
        authorizations=authorizations,
        csr_pem=csr_pem,
    )


def _order_fetch(acme: client.ClientV2, order_url: str, *, deadline: datetime):
    response = _call(lambda: acme._post_as_get(order_url), deadline=deadline, what="order")
    return messages.Order.from_json(response.json()), response


def certificate_obtain(
    acme: client.ClientV2,
    *,
    hostname: str,
    key_pem: bytes,
    deadline: datetime,
    challenge_publish: Callable[[str, str], None],
    challenge_withdraw: Callable[[str], None],
    order_placed: Callable[[str], None] = lambda url: None,
    profile: str = "",
    replaces: str = "",
    replaces_withdrawn: Callable[[], None] = lambda: None,
    finalizing: Callable[[], None] = lambda: None,
) -> Issued:
    """Order a certificate for `hostname`, prove control over HTTP-01, finalize, download.

    `profile` is asked for in the order when given; `replaces` names the certificate this one
    renews (its ARI identifier, `ari_certificate_id`), see `_order_place`. `finalizing` is
    called just before the finalize request: from then on the CA may have issued.
    """
    csr_pem = crypto_util.make_csr(key_pem, [hostname])
    carried = [replaces]

    def withdrawn() -> None:
        carried[0] = ""
        replaces_withdrawn()

    order = _order_place(
        acme,
        csr_pem=csr_pem,
        hostname=hostname,
        profile=profile,
        deadline=deadline,
        replaces=replaces,
        replaces_withdrawn=withdrawn,
    )
    order_placed(order.uri)
    published: list[str] = []
    try:
        for authorization in order.authorizations:
            if authorization.body.status == messages.STATUS_VALID:
                continue  # the CA remembers an earlier validation for this account
            challenge = _http01(authorization)
            response, validation = challenge.response_and_validation(acme.net.key)
            challenge_publish(challenge.chall.encode("token"), validation)
            published.append(challenge.chall.encode("token"))
            _call(
                lambda challenge=challenge, response=response: acme.answer_challenge(
                    challenge, response
                ),
                deadline=deadline,
                what="challenge",
            )
        for authorization in order.authorizations:
            _authorization_wait(acme, authorization, deadline=deadline)
    finally:
        for token in published:
            challenge_withdraw(token)

    finalizing()
    _call(lambda: acme.begin_finalization(order), deadline=deadline, what="finalize")
    for pause in _poll_intervals(deadline):
        body, response = _order_fetch(acme, order.uri, deadline=deadline)
        if body.status == messages.STATUS_VALID and body.certificate:
            certificate = _call(
                lambda url=body.certificate: acme._post_as_get(url),
                deadline=deadline,
                what="certificate download",
            )
            return Issued(order_url=order.uri, fullchain_pem=certificate.text, replaces=carried[0])
        if body.status == messages.STATUS_INVALID:
            raise AcmeFailure(
                f"The CA refused the order: {_problem_words(body.error)}",
                code=getattr(body.error, "code", None) or "",
            )
        time.sleep(max(pause, _retry_after_seconds(response.headers.get("Retry-After")) or 0))
    raise AcmeFailure("The CA did not issue the certificate in time.")


def _authorization_wait(acme: client.ClientV2, authorization, *, deadline: datetime) -> None:
    """Poll one authorization until the CA has validated it (or refused)."""
    for pause in _poll_intervals(deadline):
        current, response = _call(lambda: acme.poll(authorization), deadline=deadline, what="poll")
        status = current.body.status
        if status == messages.STATUS_VALID:
            return
        if status == messages.STATUS_INVALID:
            failed = [c.error for c in current.body.challenges if c.error is not None]
            reasons = [_problem_words(error) for error in failed]
            raise AcmeFailure(
                f"The CA could not validate {current.body.identifier.value}: "
                + ("; ".join(reasons) or "no reason given"),
                code=next((error.code for error in failed if error.code), ""),
            )
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        time.sleep(max(pause, min(retry_after or 0, POLL_MAX)))
    raise AcmeFailure("The CA did not validate the challenge in time.")


@dataclass(frozen=True)
class RenewalWindow:
    """A certificate's suggested renewal window (RFC 9773 section 4.2) and how long the CA
    asks to wait before asking again (its Retry-After in seconds, section 4.3, or None)."""

    start: datetime
    end: datetime
    retry_after: float | None = None

    def random_time(self, *, not_before: datetime | None = None) -> datetime:
        """A uniformly random moment of the window (section 4.2), from `not_before` on when
        that is later than the start (a window partly past is spread over what is left)."""
        start = max(self.start, not_before) if not_before is not None else self.start
        if start >= self.end:
            return start
        return start + (self.end - start) * random.random()


def ari_offered(acme: client.ClientV2) -> bool:
    """Whether the CA's directory has a renewalInfo URL (RFC 9773 section 3)."""
    try:
        return bool(acme.directory["renewalInfo"])
    except KeyError:
        return False


def ari_certificate_id(certificate_pem: str | bytes) -> str | None:
    """The certificate's ARI identifier (RFC 9773 section 4.1): base64url of the Authority Key
    Identifier's keyIdentifier, ".", base64url of the serial number's DER bytes; None for a
    certificate without that extension. Computed by the `acme` library's own helper."""
    if isinstance(certificate_pem, str):
        certificate_pem = certificate_pem.encode()
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    try:
        return _renewal_info_path_component(certificate)
    except x509.ExtensionNotFound:
        return None


def renewal_info(
    acme: client.ClientV2, *, certificate_pem: str, deadline: datetime
) -> RenewalWindow | None:
    """GET the certificate's RenewalInfo (RFC 9773 section 4); None when the CA offers no ARI.

    A CA that does not answer raises like any request here (AcmeProblem, AcmeFailure); a
    window whose end is not after its start is refused as section 4.2 asks (AcmeFailure).
    """
    if not ari_offered(acme):
        return None
    certificate_id = ari_certificate_id(certificate_pem)
    if certificate_id is None:
        return None
    url = acme.directory["renewalInfo"].rstrip("/") + "/" + certificate_id
    response = _call(
        lambda: acme.net.get(url, content_type="application/json"), deadline=deadline, what="ARI"
    )
    try:
        window = messages.RenewalInfo.from_json(response.json()).suggested_window
        start, end = _aware(window.start), _aware(window.end)
    except (ValueError, TypeError, AttributeError, jose.DeserializationError) as error:
        raise AcmeFailure(f"The CA's renewal information is unreadable: {error}") from error
    if start is None or end is None or end <= start:
        raise AcmeFailure("The CA's renewal window is invalid (its end is not after its start).")
    return RenewalWindow(
        start=start,
        end=end,
        retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
    )


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def deadline_in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
