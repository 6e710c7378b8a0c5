"""PEM text and DER certificates: normalising what editors save (byte order marks, UTF-16),
splitting a file into its BEGIN/END blocks with the damaged ones marked and why, decoding a
block's RFC 1421 headers and base64 body, loading a DER certificate or PKCS#7 bundle with every
lazily parsed part read at once, and writing a certificate back as PEM.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import textwrap
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

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


def _pem_rebuild(*, label: str, headers: list[bytes], der: bytes) -> bytes:
    """A clean PEM block (LF line endings, 64-column lines) with ``headers``."""
    text = base64.b64encode(der).decode("ascii")
    lines = [f"-----BEGIN {label}-----"]
    lines += [header.decode("ascii", errors="replace") for header in headers] + [""]
    lines += textwrap.wrap(text, 64) + [f"-----END {label}-----", ""]
    return "\n".join(lines).encode("ascii")


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
    certificate.subject.rfc4514_string()
    certificate.issuer.rfc4514_string()
    len(certificate.extensions)
    # An algorithm this module does not know is shown as "unknown", not refused.
    with contextlib.suppress(UnsupportedAlgorithm):
        certificate.signature_hash_algorithm  # noqa: B018 - read for its parse errors


def certificate_pem(certificate: x509.Certificate) -> str:
    """``certificate`` as PEM text."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
