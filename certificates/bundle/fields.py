"""Reading one upload field into a ``_FieldContent``: the size and block-count limits first, then
each PEM block (certificate, PKCS#7, private key; a CSR is remembered; other labels are
ignored) or, for a file without PEM blocks, PKCS#12, a DER certificate, PKCS#7 or a DER key.
Damaged blocks are reported on the field, a few at most; a field refused whole (too large, too
many blocks) reads as None. Every field of one upload shares one key-derivation budget.
``_holds_key`` tells from the file's structure alone, never by loading it, whether a file given
as the certificate holds private-key material.
"""

from __future__ import annotations

from .der import _key_shape
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
    _CertificateRefused,
    _pem_blocks,
    _pem_body_decode,
    _PemBlock,
    _pkcs7_certificates_load,
    _text_normalize,
)
from .pkcs12 import _looks_like_pkcs12, _pkcs12_read
from .results import BundleResult, _errors_add_capped, _FieldContent, _KdfBudget


def _field_read(
    result: BundleResult,
    *,
    field_name: str,
    data: bytes,
    secret: bytes | None,
    budget: _KdfBudget,
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
            _pem_block_read(result, content=content, block=block, secret=secret, budget=budget)
    else:
        _binary_read(result, content=content, data=data, secret=secret, budget=budget)
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
    it, a PEM private-key label (a damaged key too), or DER bytes shaped like a key.

    The DER is only walked, never loaded: loading validates and computes (an RSA key with
    composite factors took minutes), and key material is refused whether or not it loads.
    """
    if content.keys or b"PRIVATE KEY-----" in data:
        return True
    return _key_shape(data) is not None


def _pem_block_read(
    result: BundleResult,
    *,
    content: _FieldContent,
    block: _PemBlock,
    secret: bytes | None,
    budget: _KdfBudget,
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
        _key_add(
            result,
            content=content,
            der=der,
            headers=headers,
            secret=secret,
            budget=budget,
            damaged=lambda: _damage_note(
                content, block, "it is not a private key in PKCS#1, PKCS#8 or SEC1 form"
            ),
        )
        return
    try:
        if label in _PKCS7_LABELS:
            content.certificates.extend(_pkcs7_certificates_load(der))
        else:
            content.certificates.append(_certificate_load(der))
    except _CertificateRefused as refusal:
        content.problems = content.certificate_refused = True
        content.damage.append(f"Block {block.number} ({block.label}): {refusal}")
    except _CERTIFICATE_ERRORS:
        kind = "PKCS#7 certificate bundle" if label in _PKCS7_LABELS else "certificate"
        _damage_note(content, block, f"it is not a valid {kind}")


def _damage_note(content: _FieldContent, block: _PemBlock, damage: str) -> None:
    """Remember that ``block`` could not be read."""
    content.problems = True
    content.damage.append(f"Block {block.number} ({block.label}) is damaged: {damage}.")


def _binary_read(
    result: BundleResult,
    *,
    content: _FieldContent,
    data: bytes,
    secret: bytes | None,
    budget: _KdfBudget,
) -> None:
    """Add what a file without PEM blocks holds: PKCS#12, DER certificate, PKCS#7 or DER key."""
    if not data.strip():
        return
    if content.field_name == FIELD_CERTIFICATE and _looks_like_pkcs12(data):
        _pkcs12_read(result, content=content, data=data, secret=secret, budget=budget)
        return
    for load in (_certificate_load, _pkcs7_certificates_load):
        try:
            loaded = load(data)
        except _CertificateRefused as refusal:
            content.problems = content.certificate_refused = True
            result.error_add(content.field_name, str(refusal))
            return
        except _CERTIFICATE_ERRORS:
            continue
        content.certificates.extend(loaded if isinstance(loaded, list) else [loaded])
        return
    if content.field_name == FIELD_PRIVATE_KEY:
        _key_add(
            result,
            content=content,
            der=data,
            headers=[],
            secret=secret,
            budget=budget,
            damaged=lambda: None,
        )
