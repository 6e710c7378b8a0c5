"""Read and check what an operator uploads for a certificate.

Contract:

* Pure module: no Django imports.  ``certificate_bundle_parse`` takes the raw
  bytes of the three upload fields (certificate, private key, chain) plus the
  passphrase, and returns a ``BundleResult``; it never raises, whatever the
  bytes.  Problems are plain-words messages keyed by the form field they
  belong to (``FIELDS``), so the form can show them next to that field.
* Accepted forms:
    - certificate field: PEM certificate(s), a DER certificate, a combined
      PEM (key, leaf and intermediates in any order), PKCS#7 (PEM or DER), or
      PKCS#12 (.p12/.pfx) opened with the passphrase;
    - private key field: PKCS#1, PKCS#8, SEC1, encrypted PKCS#8 and legacy
      encrypted PEM, or DER; opened with the passphrase when encrypted;
    - chain field: PEM certificates (text between blocks is ignored), a single
      DER certificate, or PKCS#7.
* The leaf is the certificate matching the private key, else the first
  certificate of the certificate field that issues none of the others.  The
  intermediates are ordered from the leaf towards the root by name and
  signature; a self-signed root is dropped, stray certificates are refused.
* For ``kind == "ssl"`` an expired or not-yet-valid leaf, an RSA key under
  2048 bits, an EC key with explicit curve parameters and SHA-1/MD5
  signatures are refused; for other kinds they are
  only warnings.  A key that does not match and a broken chain are refused
  for every kind.
* When the result is ``ok``, either ``leaf`` is set or ``unreadable`` is True
  (a PKCS#12 file holding only a key is refused).
* A certificate is read whole when loaded (names, extensions, signature
  parameters, which cryptography parses lazily): one with a malformed part is
  a damaged block or an unreadable file, reported on the field it came in.
* ``BundleResult.unreadable`` is True when the certificate field held nothing
  readable as a certificate and was not a PKCS#12 file; the certificate
  field's errors then only say why (``UNREADABLE_MESSAGE``, damaged blocks, a
  CSR instead of a certificate), so a form may accept the upload with an
  expiry date typed by hand.  The key and chain are still read and checked.
* Input is bounded so hostile files stay cheap: ``MAX_FILE_BYTES`` per field,
  ``MAX_PEM_BLOCKS`` blocks and ``MAX_CERTIFICATES`` certificates per field,
  ``MAX_KDF_ITERATIONS`` password-derivation rounds, RSA keys proven by one
  signature instead of cryptography's primality checks (seconds for big
  keys), PKCS#12 key bags of at most ``MAX_PKCS12_KEY_BAG_BYTES``, and at most
  ``MAX_FIELD_MESSAGES`` similar messages per field.
* The returned private key is unencrypted PKCS#8 PEM; it is kept out of the
  result's ``repr`` so it does not end up in logs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import logging
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

logger = logging.getLogger(__name__)

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)

MAX_FILE_BYTES = 64 * 1024
MAX_PEM_BLOCKS = 100
MAX_CERTIFICATES = 50
# A hostile file could otherwise produce a page of near-identical messages.
MAX_FIELD_MESSAGES = 5
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384
# Password-based key derivation costs what the file says; OpenSSL writes 2048
# rounds and careful tools a few hundred thousand.
MAX_KDF_ITERATIONS = 1_000_000
# PKCS#12 files give no way to skip the slow RSA key validation of
# cryptography (seconds for 8192 bits); an encrypted key bag of this size
# holds an RSA key of about 4096 bits.
MAX_PKCS12_KEY_BAG_BYTES = 3000

FIELD_CERTIFICATE = "certificate"
FIELD_PRIVATE_KEY = "private_key"
FIELD_CHAIN = "chain"
FIELD_PASSPHRASE = "passphrase"
FIELDS = (FIELD_CERTIFICATE, FIELD_PRIVATE_KEY, FIELD_CHAIN, FIELD_PASSPHRASE)

KIND_SSL = "ssl"

UNREADABLE_MESSAGE = "The file could not be read as a certificate (PEM, DER or PKCS#12)."
TOO_LARGE_MESSAGE = "The file is larger than 64 KiB; a certificate file is a few KiB."
NOT_A_KEY_MESSAGE = "The file is not a private key we can read (PEM or DER)."
NO_CHAIN_CERTIFICATE_MESSAGE = "The chain file holds no certificate we can read."
UNEXPECTED_FAILURE_MESSAGE = (
    "The files could not be checked because of an unexpected problem with their content."
)
KEY_MISMATCH_MESSAGE = "The private key does not belong to this certificate."
TWO_KEYS_MESSAGE = "The files hold two different private keys; upload only this certificate's key."
KEY_PASSPHRASE_MISSING_MESSAGE = "The private key is encrypted: enter its passphrase."
KEY_PASSPHRASE_WRONG_MESSAGE = "The passphrase does not open the private key."
PKCS12_PASSWORD_MISSING_MESSAGE = "This is a PKCS#12 file: enter its password."
PKCS12_PASSWORD_WRONG_MESSAGE = "The password of the PKCS#12 file is wrong."
PKCS12_DAMAGED_MESSAGE = "The PKCS#12 file is damaged and could not be read."
PKCS12_NO_CERTIFICATE_MESSAGE = (
    "The PKCS#12 file holds no certificate: export it again with the certificate included."
)
PKCS12_CERTIFICATE_DAMAGED_MESSAGE = (
    "The PKCS#12 file holds a certificate whose content is malformed and cannot be read."
)
PKCS12_KEY_TOO_LARGE_MESSAGE = (
    "The PKCS#12 file holds a very large key (over 4096 bits); "
    "upload the certificate and the key as PEM files instead."
)
KDF_TOO_EXPENSIVE_MESSAGE = (
    "The file's password protection asks for {iterations:,} rounds of key derivation; "
    "export it again with standard settings."
)
KEY_INCONSISTENT_MESSAGE = "The private key is damaged: its parts do not fit together."
KEY_UNSUPPORTED_MESSAGE = (
    "The private key uses an algorithm or curve certmgr cannot read "
    "(custom EC curve parameters, for example)."
)
EXPLICIT_CURVE_MESSAGE = (
    "The certificate's EC key spells out its curve parameters instead of naming the curve; "
    "browsers reject such certificates. Have it issued for a key saved with a named curve "
    "(openssl ec -param_enc named_curve)."
)
KEY_UNUSABLE_TYPE_MESSAGE = "The private key is of a type certificates do not use."
KEY_NOT_CERTIFICATE_MESSAGE = (
    "This file holds a private key but no certificate we can read: put the key in "
    "Certificate key and the certificate here."
)
CSR_MESSAGE = (
    "This is a certificate signing request (CSR), not a certificate: "
    "upload the certificate your certificate authority issued for it."
)
NO_KEY_WARNING = "No private key: the certificate can be tracked but not deployed."
REORDERED_WARNING = "The chain was given out of order and has been re-ordered."
NO_INTERMEDIATES_WARNING = (
    "No intermediate certificates were given: browsers may fail to trust the certificate "
    "without them."
)
SELF_SIGNED_WARNING = "The certificate is self-signed: browsers will not trust it."

_CERTIFICATE_LABELS = frozenset({"CERTIFICATE", "X509 CERTIFICATE", "X.509 CERTIFICATE"})
_PKCS7_LABELS = frozenset({"PKCS7", "CMS", "PKCS #7 SIGNED DATA"})
_CSR_LABELS = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})
_WEAK_HASHES = {"sha1": "SHA-1", "md5": "MD5"}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_PEM_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9][A-Z0-9 #.]{0,60})-----")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# DER prefixes of the OIDs of PKCS#5 (1.2.840.113549.1.5.x, including PBKDF2)
# and PKCS#12 (1.2.840.113549.1.12.1.x) password-based encryption.
_PBE_OID_PREFIX = re.compile(
    re.escape(bytes.fromhex("06092a864886f70d0105"))
    + b"|"
    + re.escape(bytes.fromhex("060a2a864886f70d010c01"))
)
# DER prefix of the OIDs of the PKCS#12 keyBag and pkcs8ShroudedKeyBag.
_PKCS12_KEY_BAG_OID = re.compile(
    re.escape(bytes.fromhex("060b2a864886f70d010c0a01")) + b"[\x01\x02]"
)
_ROUND_TRIP_MESSAGE = b"certmgr: does this key sign for its public key?"
# The content of the OID id-ecPublicKey (1.2.840.10045.2.1).
_EC_PUBLIC_KEY_OID = bytes.fromhex("2a8648ce3d0201")
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


class BundleError(ValueError):
    """A problem with an uploaded file, attached to the form field it concerns."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class CertificateFacts:
    """What the interface shows and stores about one certificate."""

    subject: str
    common_name: str
    sans: list[str]
    issuer: str
    serial_number: str
    fingerprint_sha256: str
    key_type: str
    key_size: int | None
    key_curve: str
    signature_hash: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    is_ca: bool
    self_signed: bool
    # The EC public key spells its curve out instead of naming it (RFC 5480 forbids it).
    key_curve_explicit: bool = False

    @property
    def key_description(self) -> str:
        """The key in a few words: "RSA 2048", "EC P-256", "Ed25519"."""
        if self.key_type == "EC":
            return f"EC {self.key_curve}"
        if self.key_size is not None:
            return f"{self.key_type} {self.key_size}"
        return self.key_type


@dataclass
class BundleResult:
    """The outcome of reading an upload: what was found and what is wrong with it."""

    leaf: CertificateFacts | None = None
    chain: list[CertificateFacts] = field(default_factory=list)
    certificate_pem: str = ""
    chain_pem: str = ""
    private_key_pem: str | None = field(default=None, repr=False)
    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    unreadable: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing was refused."""
        return not self.errors

    def error_add(self, field_name: str, message: str) -> None:
        """Record ``message`` against ``field_name`` once."""
        messages = self.errors.setdefault(field_name, [])
        if message not in messages:
            messages.append(message)

    def warning_add(self, message: str) -> None:
        """Record a warning once."""
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass
class _FieldContent:
    """The certificates and keys found in one upload field."""

    field_name: str
    certificates: list[x509.Certificate] = field(default_factory=list)
    keys: list[PrivateKey] = field(default_factory=list)
    is_pkcs12: bool = False
    csr_found: bool = False
    # Something was recognised but could not be opened (and was reported).
    problems: bool = False
    damage: list[str] = field(default_factory=list)


@dataclass
class _PemBlock:
    """One ``-----BEGIN X-----`` block; ``damage`` says why it cannot be used."""

    number: int
    label: str
    body: bytes
    damage: str = ""


# --------------------------------------------------------------------------- public API


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


def certificate_pem_facts(pem: str) -> CertificateFacts:
    """Facts about one stored PEM certificate; ValueError when it is not one."""
    return certificate_facts(x509.load_pem_x509_certificate(pem.encode("ascii")))


def private_key_load(data: bytes, *, passphrase: str | None = None) -> PrivateKey:
    """The first private key in a PEM or DER file; BundleError when there is none."""
    result = BundleResult()
    content = _field_read(
        result, field_name=FIELD_PRIVATE_KEY, data=data, secret=_secret(passphrase)
    )
    if content is not None and content.keys:
        return content.keys[0]
    for field_name in (FIELD_PASSPHRASE, FIELD_PRIVATE_KEY):
        if result.errors.get(field_name):
            raise BundleError(field_name, result.errors[field_name][0])
    raise BundleError(FIELD_PRIVATE_KEY, NOT_A_KEY_MESSAGE)


def private_key_pem(key: PrivateKey) -> str:
    """``key`` as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def certificate_pem(certificate: x509.Certificate) -> str:
    """``certificate`` as PEM text."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


# --------------------------------------------------------------------------- the check


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
    certificate_content = _field_read(
        result, field_name=FIELD_CERTIFICATE, data=certificate or b"", secret=secret
    )
    key_content = None
    if _given(private_key):
        key_content = _field_read(
            result, field_name=FIELD_PRIVATE_KEY, data=private_key or b"", secret=secret
        )
        if key_content is not None and not key_content.keys and not key_content.problems:
            result.error_add(FIELD_PRIVATE_KEY, NOT_A_KEY_MESSAGE)
    chain_content = None
    if _given(chain):
        chain_content = _field_read(
            result, field_name=FIELD_CHAIN, data=chain or b"", secret=secret
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
        elif not certificate_content.is_pkcs12:
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


# --------------------------------------------------------------------------- reading fields


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


def _errors_add_capped(
    result: BundleResult, field_name: str, messages: list[str], *, more: str
) -> None:
    """Record the first few distinct ``messages``; the rest are only counted."""
    distinct = list(dict.fromkeys(messages))
    for message in distinct[:MAX_FIELD_MESSAGES]:
        result.error_add(field_name, message)
    if len(distinct) > MAX_FIELD_MESSAGES:
        result.error_add(field_name, more.format(count=len(distinct) - MAX_FIELD_MESSAGES))


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


def _looks_like_pkcs12(data: bytes) -> bool:
    """True for a DER SEQUENCE whose first element is INTEGER 3 (the PFX version)."""
    if len(data) < 5 or data[0] != 0x30:
        return False
    length_byte = data[1]
    offset = 2 + (length_byte & 0x7F if length_byte & 0x80 else 0)
    return data[offset : offset + 3] == b"\x02\x01\x03"


def _pkcs12_read(
    result: BundleResult, *, content: _FieldContent, data: bytes, secret: bytes | None
) -> None:
    """Add the key and certificates of a PKCS#12 file, opened with ``secret``."""
    content.is_pkcs12 = True
    iterations = max(_kdf_iterations(data), _pkcs12_mac_iterations(data))
    if iterations > MAX_KDF_ITERATIONS:
        content.problems = True
        result.error_add(FIELD_CERTIFICATE, KDF_TOO_EXPENSIVE_MESSAGE.format(iterations=iterations))
        return
    if _pkcs12_key_bag_size(data) > MAX_PKCS12_KEY_BAG_BYTES:
        content.problems = True
        result.error_add(FIELD_CERTIFICATE, PKCS12_KEY_TOO_LARGE_MESSAGE)
        return
    # An empty password is encoded differently from no password by some
    # tools, and a password typed for a file that has none is harmless.
    passwords = [secret, None, b""] if secret else [None, b""]
    failure: Exception | None = None
    for password in passwords:
        try:
            key, certificate, additional = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            failure = error
            continue
        certificates = [certificate, *additional] if certificate else additional
        try:
            for each in certificates:
                _certificate_parts_check(each)
        except _CERTIFICATE_ERRORS:
            content.problems = True
            result.error_add(FIELD_CERTIFICATE, PKCS12_CERTIFICATE_DAMAGED_MESSAGE)
            return
        if key is not None:
            _key_accept(result, content=content, key=key)
        content.certificates.extend(certificates)
        return
    content.problems = True
    # cryptography says "Invalid password or PKCS12 data" for a wrong password
    # and "Could not deserialize PKCS12 data" for a damaged file.
    if "password" not in str(failure).lower():
        result.error_add(FIELD_CERTIFICATE, PKCS12_DAMAGED_MESSAGE)
    elif secret:
        result.error_add(FIELD_PASSPHRASE, PKCS12_PASSWORD_WRONG_MESSAGE)
    else:
        result.error_add(FIELD_PASSPHRASE, PKCS12_PASSWORD_MISSING_MESSAGE)


def _key_add(
    result: BundleResult,
    *,
    content: _FieldContent,
    encoded: bytes,
    is_pem: bool,
    secret: bytes | None,
    damaged: Callable[[], None],
) -> None:
    """Open a PEM or DER private key, asking for the passphrase only when needed."""
    try:
        key = _private_key_decode(encoded, is_pem=is_pem, password=None)
    except TypeError:
        # cryptography raises TypeError when a password is needed.
        if not secret:
            content.problems = True
            result.error_add(FIELD_PASSPHRASE, KEY_PASSPHRASE_MISSING_MESSAGE)
            return
        iterations = 0 if is_pem else _kdf_iterations(encoded)
        if iterations > MAX_KDF_ITERATIONS:
            content.problems = True
            result.error_add(
                content.field_name, KDF_TOO_EXPENSIVE_MESSAGE.format(iterations=iterations)
            )
            return
        try:
            key = _private_key_decode(encoded, is_pem=is_pem, password=secret)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            content.problems = True
            result.error_add(FIELD_PASSPHRASE, KEY_PASSPHRASE_WRONG_MESSAGE)
            return
    except UnsupportedAlgorithm:
        # A well-formed key cryptography cannot use, such as one on a custom curve given by
        # explicit parameters (explicit parameters of P-256/384/521 are read as those curves).
        content.problems = True
        result.error_add(content.field_name, KEY_UNSUPPORTED_MESSAGE)
        return
    except ValueError:
        damaged()
        return
    _key_accept(result, content=content, key=key)


def _private_key_decode(encoded: bytes, *, is_pem: bool, password: bytes | None) -> object:
    """Decode a key without cryptography's RSA validation, which takes seconds for big keys."""
    # _key_problem proves the key instead, with one signature.
    load = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    return load(encoded, password, unsafe_skip_rsa_key_validation=True)


def _key_accept(result: BundleResult, *, content: _FieldContent, key: object) -> None:
    """Keep ``key`` unless it is unusable for a certificate."""
    problem = _key_problem(key)
    if problem:
        content.problems = True
        result.error_add(content.field_name, problem)
    else:
        content.keys.append(key)  # type: ignore[arg-type]


def _key_problem(key: object) -> str:
    """Why ``key`` cannot serve a certificate, "" when it can."""
    if not isinstance(key, PrivateKey):
        # X25519/X448 and DH keys cannot sign, so no certificate can use them.
        return KEY_UNUSABLE_TYPE_MESSAGE
    if not isinstance(key, rsa.RSAPrivateKey):
        return ""
    if key.key_size > MAX_RSA_BITS:
        return f"The RSA key has {key.key_size} bits; more than {MAX_RSA_BITS} is not supported."
    try:
        signature = key.sign(_ROUND_TRIP_MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        key.public_key().verify(signature, _ROUND_TRIP_MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return KEY_INCONSISTENT_MESSAGE
    return ""


def _kdf_iterations(data: bytes) -> int:
    """The largest iteration count of the password-based encryptions declared in ``data``."""
    largest = 0
    for match in _PBE_OID_PREFIX.finditer(data):
        oid = _der_value(data, match.start())
        parameters = _der_value(data, oid[2]) if oid else None
        if not parameters or parameters[0] != 0x30:
            continue
        # PBEParameter and PBKDF2-params both read { salt, iterationCount, ... }.
        salt_and_count = _der_children(data, parameters, limit=2)
        if len(salt_and_count) == 2 and salt_and_count[1][0] == 0x02:
            largest = max(largest, _der_integer(data, salt_and_count[1]))
    return largest


def _pkcs12_mac_iterations(data: bytes) -> int:
    """The iteration count of the PKCS#12 integrity check (1 when absent)."""
    # PFX ::= SEQUENCE { version, authSafe, macData SEQUENCE { mac, macSalt, iterations } }
    pfx = _der_value(data, 0)
    pfx_parts = _der_children(data, pfx, limit=3) if pfx else []
    mac_parts = _der_children(data, pfx_parts[2], limit=3) if len(pfx_parts) == 3 else []
    if len(mac_parts) == 3 and mac_parts[2][0] == 0x02:
        return _der_integer(data, mac_parts[2])
    return 1


def _pkcs12_key_bag_size(data: bytes) -> int:
    """The size of the largest key bag whose OID is readable in a PKCS#12 file."""
    largest = 0
    for match in _PKCS12_KEY_BAG_OID.finditer(data):
        oid = _der_value(data, match.start())
        value = _der_value(data, oid[2]) if oid else None
        if value:
            largest = max(largest, value[2] - value[1])
    return largest


def _der_value(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """Tag, content start and content end of the DER value at ``offset``; None if malformed."""
    if offset + 2 > len(data):
        return None
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        length_bytes = length & 0x7F
        # Indefinite (BER) and absurd lengths are not followed.
        if not 1 <= length_bytes <= 4 or start + length_bytes > len(data):
            return None
        length = int.from_bytes(data[start : start + length_bytes], "big")
        start += length_bytes
    if start + length > len(data):
        return None
    return tag, start, start + length


def _der_children(
    data: bytes, parent: tuple[int, int, int], *, limit: int
) -> list[tuple[int, int, int]]:
    """Up to ``limit`` values inside the constructed value ``parent``."""
    children: list[tuple[int, int, int]] = []
    offset = parent[1]
    while offset < parent[2] and len(children) < limit:
        child = _der_value(data, offset)
        if child is None or child[2] > parent[2]:
            break
        children.append(child)
        offset = child[2]
    return children


def _der_integer(data: bytes, value: tuple[int, int, int]) -> int:
    """The DER INTEGER ``value``, saturated so that a thousand-digit count stays cheap."""
    content = data[value[1] : value[2]]
    if len(content) > 8:
        return 2**64
    return int.from_bytes(content, "big", signed=True)


# --------------------------------------------------------------------------- facts


def certificate_facts(certificate: x509.Certificate) -> CertificateFacts:
    """The facts of one certificate."""
    key_type, key_size, key_curve = _public_key_description(certificate)
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string(),
        common_name=_common_name(certificate.subject),
        sans=_subject_alternative_names(certificate),
        issuer=certificate.issuer.rfc4514_string(),
        serial_number=format(certificate.serial_number, "x"),
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
        key_type=key_type,
        key_size=key_size,
        key_curve=key_curve,
        signature_hash=_signature_hash_name(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=_is_ca(certificate),
        self_signed=_self_signed(certificate),
        key_curve_explicit=_key_curve_explicit(certificate),
    )


def _common_name(name: x509.Name) -> str:
    """The first common name of ``name``, "" when it has none."""
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return ""
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _subject_alternative_names(certificate: x509.Certificate) -> list[str]:
    """DNS names and IP addresses of the SAN extension, in order."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except ValueError:
        # A malformed extension (including duplicates) is not worth refusing for.
        return []
    names = []
    for general_name in extension.value:
        if isinstance(general_name, x509.DNSName | x509.IPAddress):
            names.append(str(general_name.value))
    return names


def _public_key_description(certificate: x509.Certificate) -> tuple[str, int | None, str]:
    """Key type, size in bits and curve name of the certificate's public key."""
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", None, ""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size, ""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve
        return "EC", curve.key_size, _CURVE_NAMES.get(curve.name, curve.name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", None, ""
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448", None, ""
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size, ""
    return "unknown", None, ""


def _key_curve_explicit(certificate: x509.Certificate) -> bool:
    """True when the certificate's EC key carries explicit curve parameters.

    cryptography reads explicit P-256/384/521 parameters as the named curve, so this looks at
    the encoded SubjectPublicKeyInfo: its algorithm parameters are an OID for a named curve
    and a SEQUENCE when spelled out.
    """
    data = certificate.tbs_certificate_bytes
    tbs = _der_value(data, 0)
    # TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, SPKI
    parts = _der_children(data, tbs, limit=7) if tbs else []
    spki_index = 6 if parts and parts[0][0] == 0xA0 else 5
    if len(parts) <= spki_index:
        return False
    spki = _der_children(data, parts[spki_index], limit=1)
    algorithm = _der_children(data, spki[0], limit=2) if spki else []
    return (
        len(algorithm) == 2
        and data[algorithm[0][1] : algorithm[0][2]] == _EC_PUBLIC_KEY_OID
        and algorithm[1][0] == 0x30
    )


def _signature_hash_name(certificate: x509.Certificate) -> str:
    """The hash of the certificate's signature ("sha256"), "" for EdDSA."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return algorithm.name if algorithm is not None else ""


def _is_ca(certificate: x509.Certificate) -> bool:
    """True when basic constraints say the certificate is a CA."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return extension.value.ca


def _self_signed(certificate: x509.Certificate) -> bool:
    """True when the certificate names and signs itself."""
    return certificate.issuer == certificate.subject and _signed_by(certificate, certificate)


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer`` has the issuer name of ``certificate`` and signed it."""
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # verify_directly_issued_by refuses SHA-1 outright; checking by hand lets
        # the policy refuse such a chain for its hash, with a clear message,
        # instead of calling it broken.
        return _signature_verify_by_hand(certificate, issuer)


def _signature_verify_by_hand(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Check the signature with the issuer's public key and the certificate's hash."""
    signature, data = certificate.signature, certificate.tbs_certificate_bytes
    try:
        public_key = issuer.public_key()
        hash_algorithm = certificate.signature_hash_algorithm
        if isinstance(public_key, rsa.RSAPublicKey) and hash_algorithm is not None:
            signature_padding = certificate.signature_algorithm_parameters
            public_key.verify(signature, data, signature_padding, hash_algorithm)  # type: ignore[arg-type]
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, dsa.DSAPublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, hash_algorithm)
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _label(certificate: x509.Certificate) -> str:
    """A short name for messages: "CN=..." or the whole subject."""
    common_name = _common_name(certificate.subject)
    return f"CN={common_name}" if common_name else certificate.subject.rfc4514_string()


def _facts_label(facts: CertificateFacts) -> str:
    """A short name for messages, from facts."""
    return f"CN={facts.common_name}" if facts.common_name else facts.subject


# --------------------------------------------------------------------------- small helpers


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
