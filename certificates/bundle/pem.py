"""PEM text and DER certificates: normalising what editors save (byte order marks, UTF-16),
splitting a file into its BEGIN/END blocks with the damaged ones marked and why, decoding a
block's RFC 1421 headers and base64 body, loading a DER certificate or PKCS#7 bundle with every
lazily parsed part read at once (and refusing one whose RSA key is larger than supported,
``_CertificateRefused``), and writing a certificate back as PEM.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from .der import _spki_size, _tbs_spki
from .messages import (
    CERTIFICATE_DSA_TOO_LARGE_MESSAGE,
    CERTIFICATE_RSA_EXPONENT_MESSAGE,
    CERTIFICATE_RSA_TOO_LARGE_MESSAGE,
    MAX_DSA_BITS,
    MAX_RSA_BITS,
    MAX_RSA_EXPONENT_BITS,
)

_CERTIFICATE_LABELS = frozenset({"CERTIFICATE", "X509 CERTIFICATE", "X.509 CERTIFICATE"})
_PKCS7_LABELS = frozenset({"PKCS7", "CMS", "PKCS #7 SIGNED DATA"})
_CSR_LABELS = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})
_PEM_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9][A-Z0-9 #.]{0,60})-----")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# What cryptography raises for a malformed certificate, at loading or when one of its lazily
# parsed parts is first read (see _certificate_parts_check).
_CERTIFICATE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


@dataclass
class _PemBlock:
    """One ``-----BEGIN X-----`` block; ``damage`` says why it cannot be used."""

    number: int
    label: str
    body: bytes
    damage: str = ""


def _text_normalize(data: bytes) -> bytes:
    """Drop a UTF-8 byte order mark and turn UTF-16 text into ASCII."""
    if data.startswith(_UTF8_BOM):
        return data[len(_UTF8_BOM) :]
    if data.startswith(_UTF16_BOMS):
        # Windows editors save "Unicode" text as UTF-16; PEM is ASCII.
        try:
            return data.decode("utf-16").encode("ascii", errors="ignore")
        except UnicodeDecodeError:
            return data
    return data


def _pem_blocks(data: bytes) -> list[_PemBlock]:
    """The BEGIN/END blocks of ``data``, numbered from 1; text between them is ignored."""
    blocks: list[_PemBlock] = []
    opened: tuple[str, int] | None = None
    for marker in _PEM_MARKER.finditer(data):
        kind, label = marker.group(1), marker.group(2).decode("ascii")
        if kind == b"BEGIN":
            if opened is not None:
                blocks.append(_damaged_block(len(blocks) + 1, opened[0], "it has no END line"))
            opened = (label, marker.end())
        elif opened is not None:
            if label == opened[0]:
                blocks.append(_PemBlock(len(blocks) + 1, label, data[opened[1] : marker.start()]))
            else:
                blocks.append(
                    _damaged_block(len(blocks) + 1, opened[0], f"it ends with END {label}")
                )
            opened = None
    if opened is not None:
        blocks.append(_damaged_block(len(blocks) + 1, opened[0], "it has no END line"))
    return blocks


def _damaged_block(number: int, label: str, damage: str) -> _PemBlock:
    """A block that cannot be read."""
    return _PemBlock(number=number, label=label, body=b"", damage=damage)


def _pem_body_decode(body: bytes) -> tuple[list[bytes], bytes | None]:
    """The RFC 1421 header lines and the decoded content of a block body (None if invalid)."""
    lines = [line.strip() for line in body.splitlines()]
    lines = [line for line in lines if line]
    headers: list[bytes] = []
    while lines and b":" in lines[0]:
        headers.append(lines.pop(0))
    try:
        return headers, base64.b64decode(b"".join(lines), validate=True)
    except (binascii.Error, ValueError):
        return headers, None


class _CertificateRefused(ValueError):
    """A well-formed certificate refused for its key, whose use would cost too much."""


def _certificate_load(der: bytes) -> x509.Certificate:
    """One DER certificate whose every part this module reads is well formed."""
    certificate = x509.load_der_x509_certificate(der)
    _certificate_parts_check(certificate)
    return certificate


def _pkcs7_certificates_load(der: bytes) -> list[x509.Certificate]:
    """The certificates of a DER PKCS#7 bundle, each with well-formed parts."""
    certificates = pkcs7.load_der_pkcs7_certificates(der)
    for certificate in certificates:
        _certificate_parts_check(certificate)
    return certificates


def _certificate_parts_check(certificate: x509.Certificate) -> None:
    """Raise one of ``_CERTIFICATE_ERRORS`` when a part of ``certificate`` is malformed.

    cryptography parses names, extensions and signature parameters only when they are first
    used; parsing them here makes a malformed one "damaged" on the field it was uploaded in,
    instead of a failure later while choosing the leaf or ordering the chain.
    """
    _certificate_key_check(certificate)
    certificate.subject.rfc4514_string()
    certificate.issuer.rfc4514_string()
    len(certificate.extensions)
    # An algorithm this module does not know is shown as "unknown", not refused.
    with contextlib.suppress(UnsupportedAlgorithm):
        certificate.signature_hash_algorithm  # noqa: B018 - read for its parse errors


def _certificate_key_check(certificate: x509.Certificate) -> None:
    """Refuse a certificate whose key would make verifying costly, read from its DER: an RSA
    modulus over ``MAX_RSA_BITS``, an RSA public exponent over ``MAX_RSA_EXPONENT_BITS``, a
    DSA prime over ``MAX_DSA_BITS``.

    Building a chain verifies signatures with every candidate issuer, up to a hundred and
    fifty certificates per upload: each verification must stay cheap.
    """
    data = certificate.tbs_certificate_bytes
    spki = _tbs_spki(data)
    if spki is None:
        return
    size = _spki_size(data, spki)
    if size.algorithm == "rsa" and size.modulus_bits > MAX_RSA_BITS:
        message = CERTIFICATE_RSA_TOO_LARGE_MESSAGE.format(
            bits=size.modulus_bits, limit=MAX_RSA_BITS
        )
        raise _CertificateRefused(message)
    if size.algorithm == "rsa" and size.exponent_bits > MAX_RSA_EXPONENT_BITS:
        message = CERTIFICATE_RSA_EXPONENT_MESSAGE.format(
            bits=size.exponent_bits, limit=MAX_RSA_EXPONENT_BITS
        )
        raise _CertificateRefused(message)
    if size.algorithm == "dsa" and size.modulus_bits > MAX_DSA_BITS:
        message = CERTIFICATE_DSA_TOO_LARGE_MESSAGE.format(
            bits=size.modulus_bits, limit=MAX_DSA_BITS
        )
        raise _CertificateRefused(message)


def certificate_pem(certificate: x509.Certificate) -> str:
    """``certificate`` as PEM text."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
