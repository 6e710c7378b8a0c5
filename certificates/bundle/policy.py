"""What browsers would reject in a leaf and its chain: expired or not yet valid, an RSA key under
the minimum size, an EC key with explicit curve parameters, a SHA-1 or MD5 signature. Refused
for SSL certificates and only warned about for other kinds. A self-signed SSL certificate, an
SSL certificate given without its intermediates and an expired intermediate are only warnings.
"""

from __future__ import annotations

import datetime

from .facts import _facts_label
from .messages import (
    EXPLICIT_CURVE_MESSAGE,
    FIELD_CERTIFICATE,
    MIN_RSA_BITS,
    NO_INTERMEDIATES_WARNING,
    SELF_SIGNED_WARNING,
)
from .results import BundleResult, CertificateFacts

_WEAK_HASHES = {"sha1": "SHA-1", "md5": "MD5"}


def _policy_apply(
    result: BundleResult,
    *,
    leaf: CertificateFacts,
    intermediates: list[tuple[CertificateFacts, str]],
    intermediates_known: bool,
    is_ssl: bool,
    now: datetime.datetime,
) -> None:
    """Refuse (for SSL) or warn about what browsers would reject."""

    def complain(field_name: str, message: str) -> None:
        if is_ssl:
            result.error_add(field_name, message)
        else:
            result.warning_add(message)

    if now > leaf.not_after:
        complain(FIELD_CERTIFICATE, f"The certificate expired on {leaf.not_after:%Y-%m-%d}.")
    if now < leaf.not_before:
        complain(
            FIELD_CERTIFICATE,
            f"The certificate is not valid before {leaf.not_before:%Y-%m-%d %H:%M} UTC.",
        )
    if leaf.key_type == "RSA" and leaf.key_size is not None and leaf.key_size < MIN_RSA_BITS:
        complain(
            FIELD_CERTIFICATE,
            f"The RSA key has {leaf.key_size} bits; {MIN_RSA_BITS} is the minimum.",
        )
    if leaf.key_curve_explicit:
        complain(FIELD_CERTIFICATE, EXPLICIT_CURVE_MESSAGE)
    if leaf.signature_hash in _WEAK_HASHES and not leaf.self_signed:
        complain(
            FIELD_CERTIFICATE,
            f"The certificate is signed with {_WEAK_HASHES[leaf.signature_hash]}, "
            "which browsers reject.",
        )
    if is_ssl and leaf.self_signed:
        result.warning_add(SELF_SIGNED_WARNING)
    elif is_ssl and not intermediates_known:
        result.warning_add(NO_INTERMEDIATES_WARNING)
    for facts, origin in intermediates:
        if facts.signature_hash in _WEAK_HASHES:
            complain(
                origin,
                f"The intermediate certificate {_facts_label(facts)} is signed with "
                f"{_WEAK_HASHES[facts.signature_hash]}, which browsers reject.",
            )
        if now > facts.not_after:
            # Browsers often find another path (cross-signed roots), so only warn.
            result.warning_add(
                f"The intermediate certificate {_facts_label(facts)} expired on "
                f"{facts.not_after:%Y-%m-%d}."
            )
