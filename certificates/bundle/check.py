"""The check from end to end and its entry points: ``certificate_bundle_parse`` reads the three
upload fields with one key-derivation budget for them all, chooses the key (and proves that
one, only) and the leaf, builds the chain and applies the policy, turning any unforeseen
failure into a form error instead of raising; ``private_key_load`` opens one key file for
callers that only need the key.
"""

from __future__ import annotations

import datetime
import logging

from .chain import _chain_build, _chain_report_unordered, _key_choose, _leaf_choose, _Pool
from .facts import certificate_facts
from .fields import _field_read, _holds_key
from .keys import _key_proof_problem, private_key_pem
from .messages import (
    CSR_MESSAGE,
    FIELD_CERTIFICATE,
    FIELD_CHAIN,
    FIELD_PASSPHRASE,
    FIELD_PRIVATE_KEY,
    KEY_NOT_CERTIFICATE_MESSAGE,
    KIND_SSL,
    NO_CHAIN_CERTIFICATE_MESSAGE,
    NO_KEY_WARNING,
    NOT_A_KEY_MESSAGE,
    PKCS12_NO_CERTIFICATE_MESSAGE,
    UNEXPECTED_FAILURE_MESSAGE,
    UNREADABLE_MESSAGE,
)
from .pem import certificate_pem
from .policy import _policy_apply
from .results import BundleError, BundleResult, PrivateKey, _KdfBudget

# The package's name, as before it was split into modules, so that log filters still match.
logger = logging.getLogger(__package__)


def certificate_bundle_parse(
    *,
    certificate: bytes,
    private_key: bytes | None = None,
    chain: bytes | None = None,
    passphrase: str | None = None,
    kind: str = KIND_SSL,
    now: datetime.datetime | None = None,
) -> BundleResult:
    """Read the uploaded files, pick the leaf, order the chain and apply the policy."""
    result = BundleResult()
    try:
        _bundle_check(
            result,
            certificate=certificate,
            private_key=private_key,
            chain=chain,
            passphrase=passphrase,
            kind=kind,
            now=_utc(now or datetime.datetime.now(datetime.UTC)),
        )
    except Exception:
        # The contract is to never raise: an unforeseen library failure must
        # become a form error, not a server error.
        logger.exception("Unexpected failure while reading a certificate upload")
        result.error_add(FIELD_CERTIFICATE, UNEXPECTED_FAILURE_MESSAGE)
    return result


def private_key_load(data: bytes, *, passphrase: str | None = None) -> PrivateKey:
    """The first private key in a PEM or DER file; BundleError when there is none."""
    result = BundleResult()
    content = _field_read(
        result,
        field_name=FIELD_PRIVATE_KEY,
        data=data,
        secret=_secret(passphrase),
        budget=_KdfBudget(),
    )
    if content is not None and content.keys:
        problem = _key_proof_problem(content.keys[0])
        if problem:
            raise BundleError(FIELD_PRIVATE_KEY, problem)
        return content.keys[0]
    for field_name in (FIELD_PASSPHRASE, FIELD_PRIVATE_KEY):
        if result.errors.get(field_name):
            raise BundleError(field_name, result.errors[field_name][0])
    raise BundleError(FIELD_PRIVATE_KEY, NOT_A_KEY_MESSAGE)


def _bundle_check(
    result: BundleResult,
    *,
    certificate: bytes,
    private_key: bytes | None,
    chain: bytes | None,
    passphrase: str | None,
    kind: str,
    now: datetime.datetime,
) -> None:
    """Fill ``result`` from the three upload fields."""
    secret = _secret(passphrase)
    # One budget for every field and block: many encrypted keys cannot multiply the work.
    budget = _KdfBudget()
    certificate_content = _field_read(
        result,
        field_name=FIELD_CERTIFICATE,
        data=certificate or b"",
        secret=secret,
        budget=budget,
    )
    key_content = None
    if _given(private_key):
        key_content = _field_read(
            result,
            field_name=FIELD_PRIVATE_KEY,
            data=private_key or b"",
            secret=secret,
            budget=budget,
        )
        if key_content is not None and not key_content.keys and not key_content.problems:
            result.error_add(FIELD_PRIVATE_KEY, NOT_A_KEY_MESSAGE)
    chain_content = None
    if _given(chain):
        chain_content = _field_read(
            result, field_name=FIELD_CHAIN, data=chain or b"", secret=secret, budget=budget
        )
        if (
            chain_content is not None
            and not chain_content.certificates
            and not chain_content.problems
        ):
            result.error_add(FIELD_CHAIN, NO_CHAIN_CERTIFICATE_MESSAGE)

    # The key field is searched first so that its key wins over a different
    # one inside a combined file.
    contents = [c for c in (key_content, certificate_content, chain_content) if c is not None]
    key, key_field = _key_choose(result, contents)
    if key is not None and (problem := _key_proof_problem(key)):
        # Only the kept key is proven (one signature): the others are compared, not used.
        result.error_add(key_field, problem)
        key = None
    if key is not None:
        result.private_key_pem = private_key_pem(key)
    elif not _given(private_key) and FIELD_PASSPHRASE not in result.errors:
        # When a key was given but could not be opened, its error says enough.
        result.warning_add(NO_KEY_WARNING)

    if certificate_content is None:
        # Refused as a whole (too large, too many blocks): nothing to pick from.
        _chain_report_unordered(result, chain_content)
        return
    if not certificate_content.certificates:
        if not certificate_content.is_pkcs12 and _holds_key(certificate, certificate_content):
            # Not "unreadable" (kept as uploaded, date typed by hand): that would store the
            # key in the clear. Refused, pointing at the right field.
            result.error_add(FIELD_CERTIFICATE, KEY_NOT_CERTIFICATE_MESSAGE)
        elif not certificate_content.is_pkcs12 and not certificate_content.certificate_refused:
            result.unreadable = True
            result.error_add(FIELD_CERTIFICATE, UNREADABLE_MESSAGE)
            if certificate_content.csr_found:
                result.error_add(FIELD_CERTIFICATE, CSR_MESSAGE)
        elif not certificate_content.problems:
            # A PKCS#12 file that opened but holds only a key: nothing to store it for.
            result.error_add(FIELD_CERTIFICATE, PKCS12_NO_CERTIFICATE_MESSAGE)
        _chain_report_unordered(result, chain_content)
        return

    pool = _Pool.gather(certificate_content, chain_content, key_content)
    leaf = _leaf_choose(result, pool=pool, key=key, key_field=key_field)
    intermediates, root_dropped = _chain_build(result, pool=pool, leaf=leaf)

    result.leaf = certificate_facts(leaf)
    result.chain = [certificate_facts(certificate) for certificate in intermediates]
    result.certificate_pem = certificate_pem(leaf)
    result.chain_pem = "".join(certificate_pem(certificate) for certificate in intermediates)
    _policy_apply(
        result,
        leaf=result.leaf,
        intermediates=[
            (facts, pool.origin(certificate))
            for facts, certificate in zip(result.chain, intermediates, strict=True)
        ],
        intermediates_known=bool(intermediates) or root_dropped,
        is_ssl=kind == KIND_SSL,
        now=now,
    )


def _secret(passphrase: str | None) -> bytes | None:
    """The passphrase as bytes, None when empty."""
    return passphrase.encode("utf-8") if passphrase else None


def _given(data: bytes | None) -> bool:
    """True when an optional upload holds more than whitespace."""
    return bool(data and data.strip(b" \t\r\n\x00"))


def _utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` as aware UTC; naive values are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)
