"""From what the fields held to a leaf and its chain: the pool of distinct certificates with the
field each came from, the one private key of the upload, the leaf (the certificate matching
that key, else the end of the chain), and the intermediates ordered from the leaf towards the
root by name and signature. A self-signed root is dropped, impostors and strays are refused on
their field, and a re-ordering is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from .facts import _is_ca, _label, _self_signed, _signed_by, certificate_facts
from .messages import FIELD_CERTIFICATE, KEY_MISMATCH_MESSAGE, REORDERED_WARNING, TWO_KEYS_MESSAGE
from .pem import certificate_pem
from .results import BundleResult, PrivateKey, _errors_add_capped, _FieldContent


@dataclass
class _Pool:
    """The distinct certificates of an upload, certificate field first, with their field."""

    certificates: list[x509.Certificate]
    origins: dict[int, str]

    @classmethod
    def gather(cls, *contents: _FieldContent | None) -> _Pool:
        """Collect the certificates of ``contents``, dropping exact duplicates."""
        pool = cls(certificates=[], origins={})
        seen: set[bytes] = set()
        for content in contents:
            for certificate in content.certificates if content else []:
                der = certificate.public_bytes(serialization.Encoding.DER)
                if der not in seen:
                    seen.add(der)
                    pool.certificates.append(certificate)
                    pool.origins[id(certificate)] = content.field_name
        return pool

    def origin(self, certificate: x509.Certificate) -> str:
        """The field ``certificate`` was uploaded in."""
        return self.origins[id(certificate)]


def _key_choose(
    result: BundleResult, contents: list[_FieldContent]
) -> tuple[PrivateKey | None, str]:
    """The one private key of the upload and the field it came from."""
    chosen: PrivateKey | None = None
    chosen_field = ""
    chosen_public = b""
    for content in contents:
        for key in content.keys:
            public = _public_key_bytes(key.public_key())
            if chosen is None:
                chosen, chosen_field, chosen_public = key, content.field_name, public
            elif public != chosen_public:
                result.error_add(content.field_name, TWO_KEYS_MESSAGE)
    return chosen, chosen_field


def _leaf_choose(
    result: BundleResult, *, pool: _Pool, key: PrivateKey | None, key_field: str
) -> x509.Certificate:
    """The certificate the upload is about."""
    if key is not None:
        key_public = _public_key_bytes(key.public_key())
        for certificate in pool.certificates:
            if _certificate_public_key_bytes(certificate) == key_public:
                return certificate
        result.error_add(key_field, KEY_MISMATCH_MESSAGE)
    # Without a usable key: the first certificate that issues none of the
    # others is the end of the chain, and a non-CA one is the likelier leaf.
    uploaded = [c for c in pool.certificates if pool.origin(c) == FIELD_CERTIFICATE]
    ends = [
        certificate
        for certificate in uploaded
        if not any(
            other is not certificate and other.issuer == certificate.subject
            for other in pool.certificates
        )
    ]
    for certificate in ends:
        if not _is_ca(certificate):
            return certificate
    return (ends or uploaded)[0]


def _chain_build(
    result: BundleResult, *, pool: _Pool, leaf: x509.Certificate
) -> tuple[list[x509.Certificate], bool]:
    """Intermediates from the leaf's issuer towards the root, and whether a root was dropped.

    Certificates that are not on that path are refused as strays.
    """
    remaining = [c for c in pool.certificates if c is not leaf]
    upload_positions = {id(c): position for position, c in enumerate(remaining)}
    broken: dict[str, list[str]] = {}
    ordered: list[x509.Certificate] = []
    root_dropped = False
    current = leaf
    while remaining and not _self_signed(current):
        named = [c for c in remaining if c.subject == current.issuer]
        issuer = next((c for c in named if _signed_by(current, c)), None)
        if issuer is None:
            for impostor in named:
                remaining.remove(impostor)
                broken.setdefault(pool.origin(impostor), []).append(
                    f"The chain is broken: {_label(impostor)} has the name of the issuer of "
                    f"{_label(current)} but the signature does not verify.",
                )
            break
        remaining.remove(issuer)
        if _self_signed(issuer):
            root_dropped = True
            result.warning_add(
                f"A self-signed root certificate in the chain ({_label(issuer)}) was dropped: "
                "browsers have their own copy."
            )
            break
        ordered.append(issuer)
        current = issuer
    for stray in remaining:
        broken.setdefault(pool.origin(stray), []).append(
            f"The chain is broken: {_label(stray)} does not link to the certificate."
        )
    for field_name, messages in broken.items():
        _errors_add_capped(
            result, field_name, messages, more="{count} more certificates do not link."
        )
    positions = [upload_positions[id(c)] for c in ordered]
    if positions != sorted(positions):
        result.warning_add(REORDERED_WARNING)
    return ordered, root_dropped


def _chain_report_unordered(result: BundleResult, content: _FieldContent | None) -> None:
    """Without a leaf, show the chain file's certificates as uploaded."""
    if content is None:
        return
    certificates = _Pool.gather(content).certificates
    result.chain = [certificate_facts(certificate) for certificate in certificates]
    result.chain_pem = "".join(certificate_pem(certificate) for certificate in certificates)


def _public_key_bytes(public_key: object) -> bytes:
    """SubjectPublicKeyInfo DER of ``public_key``, to compare keys of any type."""
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _certificate_public_key_bytes(certificate: x509.Certificate) -> bytes:
    """SubjectPublicKeyInfo DER of the certificate ("" when the key type is unknown)."""
    try:
        return _public_key_bytes(certificate.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return b""
