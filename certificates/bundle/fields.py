"""Reading one upload field into a ``_FieldContent``: the size and block-count limits first, then
each PEM block (certificate, PKCS#7, private key; a CSR is remembered; other labels are
ignored) or, for a file without PEM blocks, PKCS#12, a DER certificate, PKCS#7 or a DER key.
Damaged blocks are reported on the field, a few at most; a field refused whole (too large, too
many blocks) reads as None.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from .keys import _key_add
from .messages import (
    FIELD_CERTIFICATE,
    FIELD_PRIVATE_KEY,
    MAX_CERTIFICATES,
    MAX_FILE_BYTES,
    MAX_PEM_BLOCKS,
    TOO_LARGE_MESSAGE,
)
from .pem import (
    _CERTIFICATE_ERRORS,
    _CERTIFICATE_LABELS,
    _CSR_LABELS,
    _PKCS7_LABELS,
    _certificate_load,
    _pem_blocks,
    _pem_body_decode,
    _pem_rebuild,
    _PemBlock,
    _pkcs7_certificates_load,
    _text_normalize,
)
from .pkcs12 import _looks_like_pkcs12, _pkcs12_read
from .results import BundleResult, _errors_add_capped, _FieldContent


def _field_read(
    result: BundleResult, *, field_name: str, data: bytes, secret: bytes | None
) -> _FieldContent | None:
    """Everything readable in one upload field; None when the field is refused whole."""
    if len(data) > MAX_FILE_BYTES:
        result.error_add(field_name, TOO_LARGE_MESSAGE)
        return None
    data = _text_normalize(data)
    content = _FieldContent(field_name=field_name)
    block_count = data.count(b"-----BEGIN ")
    if block_count > MAX_PEM_BLOCKS:
        result.error_add(
            field_name,
            f"The file holds {block_count} PEM blocks; at most {MAX_PEM_BLOCKS} are read.",
        )
        return None
    if block_count:
        for block in _pem_blocks(data):
            _pem_block_read(result, content=content, block=block, secret=secret)
    else:
        _binary_read(result, content=content, data=data, secret=secret)
    _errors_add_capped(result, field_name, content.damage, more="{count} more blocks are damaged.")
    if len(content.certificates) > MAX_CERTIFICATES:
        result.error_add(
            field_name,
            f"The file holds {len(content.certificates)} certificates; at most "
            f"{MAX_CERTIFICATES} are read.",
        )
        del content.certificates[MAX_CERTIFICATES:]
    return content


def _holds_key(data: bytes, content: _FieldContent) -> bool:
    """Whether a file given as the certificate holds private-key material: a key read from
    it, a PEM private-key label (a damaged key too), or DER bytes that load as a key."""
    if content.keys or b"PRIVATE KEY-----" in data:
        return True
    try:
        serialization.load_der_private_key(data, password=None)
    except TypeError:  # an encrypted DER key
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _pem_block_read(
    result: BundleResult, *, content: _FieldContent, block: _PemBlock, secret: bytes | None
) -> None:
    """Add what ``block`` holds to ``content``."""
    label = block.label
    is_key = label.endswith("PRIVATE KEY")
    known = is_key or label in _CERTIFICATE_LABELS or label in _PKCS7_LABELS
    if label in _CSR_LABELS:
        content.csr_found = True
    if not known:
        # EC PARAMETERS, PUBLIC KEY, CRLs...: not needed, not harmful.
        return
    if block.damage:
        _damage_note(content, block, block.damage)
        return
    headers, der = _pem_body_decode(block.body)
    if der is None:
        _damage_note(content, block, "its base64 text is invalid")
        return
    if is_key:
        if headers:
            # Legacy "Proc-Type: 4,ENCRYPTED" keys: only the PEM loader knows the headers.
            encoded, is_pem = _pem_rebuild(label=label, headers=headers, der=der), True
        else:
            encoded, is_pem = der, False
        _key_add(
            result,
            content=content,
            encoded=encoded,
            is_pem=is_pem,
            secret=secret,
            damaged=lambda: _damage_note(
                content, block, "it is not a private key in PKCS#1, PKCS#8 or SEC1 form"
            ),
        )
    elif label in _PKCS7_LABELS:
        try:
            content.certificates.extend(_pkcs7_certificates_load(der))
        except _CERTIFICATE_ERRORS:
            _damage_note(content, block, "it is not a valid PKCS#7 certificate bundle")
    else:
        try:
            content.certificates.append(_certificate_load(der))
        except _CERTIFICATE_ERRORS:
            _damage_note(content, block, "it is not a valid certificate")


def _damage_note(content: _FieldContent, block: _PemBlock, damage: str) -> None:
    """Remember that ``block`` could not be read."""
    content.problems = True
    content.damage.append(f"Block {block.number} ({block.label}) is damaged: {damage}.")


def _binary_read(
    result: BundleResult, *, content: _FieldContent, data: bytes, secret: bytes | None
) -> None:
    """Add what a file without PEM blocks holds: PKCS#12, DER certificate, PKCS#7 or DER key."""
    if not data.strip():
        return
    if content.field_name == FIELD_CERTIFICATE and _looks_like_pkcs12(data):
        _pkcs12_read(result, content=content, data=data, secret=secret)
        return
    try:
        content.certificates.append(_certificate_load(data))
        return
    except _CERTIFICATE_ERRORS:
        pass
    try:
        content.certificates.extend(_pkcs7_certificates_load(data))
        return
    except _CERTIFICATE_ERRORS:
        pass
    if content.field_name == FIELD_PRIVATE_KEY:
        _key_add(
            result,
            content=content,
            encoded=data,
            is_pem=False,
            secret=secret,
            damaged=lambda: None,
        )
