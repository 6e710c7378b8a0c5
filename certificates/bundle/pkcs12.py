"""PKCS#12 (.p12/.pfx) files given as the certificate, read here rather than by OpenSSL so that
every key derivation is priced before it runs, whatever the file hides.

A PKCS#12 file (RFC 7292) may encrypt part of its content, and what the encrypted part holds
(a key bag with any key derivation, a DSA key of any size) is only seen once it is decrypted:
OpenSSL would derive and load all of it. Here the integrity check (HMAC with a key from the
PKCS#12 key derivation), each encrypted content and each encrypted key bag is priced from its
parameters and charged to the upload's budget before it is derived; decrypted keys go through
the same inspection as any uploaded key (``keys``), certificates through the same checks as any
other (``pem``).

Read: DER files in password integrity mode (or without integrity check), their data and
encryptedData contents, certificate, key, encrypted key and nested bags (other contents and
bags are skipped, as OpenSSL does). The password is the one typed, else none or the empty one
(tools write an empty password either way, and a password typed for a file that has none is
harmless); the integrity check says which, each attempt priced. Refused with a message: BER
(indefinite-length) encoding, PBMAC1 and public-key integrity modes, unknown protections.
"""

from __future__ import annotations

import hashlib
import hmac

from .ciphers import PYTHON_HASH_ROUNDS, pkcs12_mac_key, pkcs12_password
from .der import _der_content, _der_integer, _der_value
from .keys import _key_add
from .messages import (
    FIELD_CERTIFICATE,
    FIELD_PASSPHRASE,
    KDF_TOO_EXPENSIVE_MESSAGE,
    MAX_KDF_ROUNDS,
    MAX_PKCS12_NESTING,
    PKCS12_CERTIFICATE_DAMAGED_MESSAGE,
    PKCS12_DAMAGED_MESSAGE,
    PKCS12_PASSWORD_MISSING_MESSAGE,
    PKCS12_PASSWORD_WRONG_MESSAGE,
    PKCS12_UNSUPPORTED_MESSAGE,
    UPLOAD_KDF_BUDGET_MESSAGE,
)
from .pbe import _protection_read, _ProtectionRefused, _WrongPassword
from .pem import _CERTIFICATE_ERRORS, _certificate_load
from .results import BundleResult, _FieldContent, _KdfBudget

_Value = tuple[int, int, int]
_SEQUENCE, _OID, _OCTET_STRING, _INTEGER = 0x30, 0x06, 0x04, 0x02
_EXPLICIT_0, _IMPLICIT_0_PRIMITIVE = 0xA0, 0x80

_DATA = bytes.fromhex("2a864886f70d010701")
_ENCRYPTED_DATA = bytes.fromhex("2a864886f70d010706")
_BAG_PREFIX = bytes.fromhex("2a864886f70d010c0a01")
_KEY_BAG, _SHROUDED_KEY_BAG, _CERT_BAG, _SAFE_CONTENTS_BAG = 1, 2, 3, 6
_X509_CERTIFICATE = bytes.fromhex("2a864886f70d01091601")
_PBMAC1 = bytes.fromhex("2a864886f70d01050e")
_MAC_HASHES = {
    bytes.fromhex("2b0e03021a"): "sha1",
    bytes.fromhex("608648016503040204"): "sha224",
    bytes.fromhex("608648016503040201"): "sha256",
    bytes.fromhex("608648016503040202"): "sha384",
    bytes.fromhex("608648016503040203"): "sha512",
}
# Bags read from one file at most (a 64 KiB file holds about two hundred certificates).
_MAX_BAGS = 500


class _Pkcs12Refused(Exception):
    """The file is not read: ``field_name`` and ``message`` say why."""

    def __init__(self, message: str, field_name: str = FIELD_CERTIFICATE) -> None:
        super().__init__(message)
        self.message = message
        self.field_name = field_name


def _looks_like_pkcs12(data: bytes) -> bool:
    """True for a DER SEQUENCE whose first element is INTEGER 3 (the PFX version)."""
    if len(data) < 5 or data[0] != 0x30:
        return False
    length_byte = data[1]
    offset = 2 + (length_byte & 0x7F if length_byte & 0x80 else 0)
    return data[offset : offset + 3] == b"\x02\x01\x03"


def _pkcs12_read(
    result: BundleResult,
    *,
    content: _FieldContent,
    data: bytes,
    secret: bytes | None,
    budget: _KdfBudget,
) -> None:
    """Add the keys and certificates of a PKCS#12 file, opened with ``secret``."""
    content.is_pkcs12 = True
    try:
        reader = _Reader(data, budget)
        reader.open(secret)
    except _Pkcs12Refused as refusal:
        content.problems = True
        result.error_add(refusal.field_name, refusal.message)
        return
    for der in reader.certificates:
        try:
            content.certificates.append(_certificate_load(der))
        except _CERTIFICATE_ERRORS:
            content.problems = True
            result.error_add(FIELD_CERTIFICATE, PKCS12_CERTIFICATE_DAMAGED_MESSAGE)
            del content.certificates[:]
            return

    def damaged() -> None:
        content.problems = True
        result.error_add(FIELD_CERTIFICATE, PKCS12_DAMAGED_MESSAGE)

    for key in reader.keys:
        _key_add(
            result,
            content=content,
            der=key,
            headers=[],
            secret=None,
            budget=budget,
            damaged=damaged,
        )


class _Walk:
    """Strict DER reading of one buffer: any malformed value refuses the file."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def value(self, offset: int) -> _Value:
        value = _der_value(self.data, offset)
        if value is None:
            if offset + 1 < len(self.data) and self.data[offset + 1] == 0x80:
                what = "the BER encoding (indefinite lengths)"
                raise _Pkcs12Refused(PKCS12_UNSUPPORTED_MESSAGE.format(what=what))
            raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
        return value

    def whole(self) -> _Value:
        """The one value the buffer holds."""
        value = self.value(0)
        if value[2] != len(self.data):
            raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
        return value

    def children(self, parent: _Value | None, tag: int, *, least: int = 0) -> list[_Value]:
        """The values inside ``parent``, which must have ``tag`` and hold at least ``least``."""
        parent = self.expect(parent, tag)
        offset, children = parent[1], []
        while offset < parent[2]:
            child = self.value(offset)
            if child[2] > parent[2]:
                raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
            children.append(child)
            offset = child[2]
        if len(children) < least:
            raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
        return children

    def expect(self, value: _Value | None, tag: int) -> _Value:
        if value is None or value[0] != tag:
            raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
        return value

    def content(self, value: _Value | None, tag: int) -> bytes:
        return _der_content(self.data, self.expect(value, tag))

    def encoded(self, value: _Value) -> bytes:
        """``value`` encoded again whole (tag, minimal length, content)."""
        content = _der_content(self.data, value)
        length = len(content)
        if length < 0x80:
            header = bytes([value[0], length])
        else:
            size = (length.bit_length() + 7) // 8
            header = bytes([value[0], 0x80 | size]) + length.to_bytes(size, "big")
        return header + content

    def content_info(self, value: _Value) -> tuple[bytes, _Value | None]:
        """ContentInfo { contentType, [0] content }: its type and its explicit content."""
        parts = self.children(value, _SEQUENCE, least=1)
        content_type = self.content(parts[0], _OID)
        if len(parts) < 2:
            return content_type, None
        explicit = self.children(parts[1], _EXPLICIT_0, least=1)
        return content_type, explicit[0]


class _Reader:
    """One PKCS#12 file: its structure, then its bags once the password is known."""

    def __init__(self, data: bytes, budget: _KdfBudget) -> None:
        self.budget = budget
        self.certificates: list[bytes] = []
        self.keys: list[bytes] = []
        self.bag_count = 0
        walk = self.walk = _Walk(data)
        parts = walk.children(walk.whole(), _SEQUENCE, least=2)
        version = walk.expect(parts[0], _INTEGER)
        if len(parts) > 3 or _der_integer(data, version) != 3:
            raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
        content_type, content = walk.content_info(parts[1])
        if content_type != _DATA:
            raise _Pkcs12Refused(PKCS12_UNSUPPORTED_MESSAGE.format(what="public-key integrity"))
        # What the integrity check covers: the DER of the AuthenticatedSafe.
        self.authenticated_safe = walk.content(content, _OCTET_STRING)
        self.mac = parts[2] if len(parts) == 3 else None

    def open(self, secret: bytes | None) -> None:
        """Find the password (the integrity check says which), then read every bag."""
        candidates = [secret, None, b""] if secret else [None, b""]
        if self.mac is not None:
            self._bags_read(self._mac_password(candidates))
            return
        # Without an integrity check, the password that decrypts every content is the one (a
        # wrong one may pass the padding check and decrypt to something malformed).
        failures = []
        for password in candidates:
            self.certificates, self.keys, self.bag_count = [], [], 0
            try:
                self._bags_read(password)
                return
            except _Pkcs12Refused as refusal:
                if (
                    refusal.field_name != FIELD_PASSPHRASE
                    and refusal.message != PKCS12_DAMAGED_MESSAGE
                ):
                    raise
                failures.append(refusal)
        if any(failure.field_name == FIELD_PASSPHRASE for failure in failures):
            raise _wrong_password(secret_given=secret is not None)
        raise failures[0]

    def _mac_password(self, candidates: list[bytes | None]) -> bytes | None:
        """The candidate whose integrity check (RFC 7292, section 5) verifies, each attempt
        priced before it runs."""
        walk = self.walk
        parts = walk.children(self.mac, _SEQUENCE, least=2)
        digest_info = walk.children(parts[0], _SEQUENCE, least=2)
        algorithm = walk.children(digest_info[0], _SEQUENCE, least=1)
        oid = walk.content(algorithm[0], _OID)
        if oid not in _MAC_HASHES:
            what = "the PBMAC1 integrity check" if oid == _PBMAC1 else "an unusual integrity check"
            raise _Pkcs12Refused(PKCS12_UNSUPPORTED_MESSAGE.format(what=what))
        hash_name = _MAC_HASHES[oid]
        expected = walk.content(digest_info[1], _OCTET_STRING)
        salt = walk.content(parts[1], _OCTET_STRING)
        iterations = (
            _der_integer(walk.data, walk.expect(parts[2], _INTEGER)) if len(parts) > 2 else 1
        )
        if iterations < 1:
            raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
        rounds = iterations * PYTHON_HASH_ROUNDS[hash_name]
        if rounds > MAX_KDF_ROUNDS:
            what = f"an integrity check with {iterations:,} iterations of {hash_name.upper()}"
            raise _Pkcs12Refused(KDF_TOO_EXPENSIVE_MESSAGE.format(what=what))
        for password in candidates:
            try:
                bmp = pkcs12_password(password)
            except UnicodeDecodeError:
                continue
            self._spend(rounds)
            key = pkcs12_mac_key(hash_name, bmp, salt, iterations)
            computed = hmac.new(key, self.authenticated_safe, getattr(hashlib, hash_name)).digest()
            if hmac.compare_digest(computed, expected):
                return password
        raise _wrong_password(secret_given=candidates[0] is not None)

    def _spend(self, rounds: int) -> None:
        if not self.budget.spend(rounds):
            raise _Pkcs12Refused(UPLOAD_KDF_BUDGET_MESSAGE)

    def _bags_read(self, password: bytes | None) -> None:
        """Every bag of the AuthenticatedSafe, decrypting the encrypted contents."""
        walk = _Walk(self.authenticated_safe)
        for content_info in walk.children(walk.whole(), _SEQUENCE):
            content_type, content = walk.content_info(content_info)
            if content_type == _DATA:
                self._safe_contents_read(walk.content(content, _OCTET_STRING), password, depth=0)
            elif content_type == _ENCRYPTED_DATA:
                # EncryptedData { version, EncryptedContentInfo { contentType,
                # contentEncryptionAlgorithm, [0] IMPLICIT encryptedContent } }
                encrypted_data = walk.children(content, _SEQUENCE, least=2)
                info = walk.children(encrypted_data[1], _SEQUENCE, least=3)
                encrypted = walk.content(info[2], _IMPLICIT_0_PRIMITIVE)
                plain = self._decrypt(walk, info[1], encrypted, password)
                self._safe_contents_read(plain, password, depth=0)
            # Other contents (enveloped data) are skipped, as OpenSSL does.

    def _decrypt(
        self, walk: _Walk, algorithm: _Value, encrypted: bytes, password: bytes | None
    ) -> bytes:
        """Decrypt with the protection ``algorithm`` declares, priced and charged first."""
        try:
            protection = _protection_read(walk.data, algorithm, len(encrypted))
        except _ProtectionRefused as refusal:
            raise _Pkcs12Refused(refusal.message) from refusal
        self._spend(protection.rounds)
        try:
            return protection.decrypt(password, encrypted)
        except _WrongPassword as error:
            if self.mac is not None:
                # The integrity check accepted the password: the content is damaged.
                raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE) from error
            raise _Pkcs12Refused(PKCS12_PASSWORD_WRONG_MESSAGE, FIELD_PASSPHRASE) from error

    def _safe_contents_read(self, safe: bytes, password: bytes | None, *, depth: int) -> None:
        """SafeContents: SafeBag { bagId, [0] bagValue, bagAttributes OPTIONAL }, in order."""
        walk = _Walk(safe)
        for bag in walk.children(walk.whole(), _SEQUENCE):
            self.bag_count += 1
            if self.bag_count > _MAX_BAGS:
                raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
            parts = walk.children(bag, _SEQUENCE, least=2)
            bag_id = walk.content(parts[0], _OID)
            value = walk.children(parts[1], _EXPLICIT_0, least=1)[0]
            kind = bag_id[-1] if bag_id[:-1] == _BAG_PREFIX else 0
            if kind == _KEY_BAG:
                self.keys.append(walk.encoded(walk.expect(value, _SEQUENCE)))
            elif kind == _SHROUDED_KEY_BAG:
                # EncryptedPrivateKeyInfo { encryptionAlgorithm, encryptedData }
                encrypted_key = walk.children(value, _SEQUENCE, least=2)
                encrypted = walk.content(encrypted_key[1], _OCTET_STRING)
                self.keys.append(self._decrypt(walk, encrypted_key[0], encrypted, password))
            elif kind == _CERT_BAG:
                # CertBag { certId, [0] certValue }: an X.509 certificate in an OCTET STRING.
                certificate = walk.children(value, _SEQUENCE, least=2)
                if walk.content(certificate[0], _OID) == _X509_CERTIFICATE:
                    inner = walk.children(certificate[1], _EXPLICIT_0, least=1)[0]
                    self.certificates.append(walk.content(inner, _OCTET_STRING))
            elif kind == _SAFE_CONTENTS_BAG:
                if depth >= MAX_PKCS12_NESTING:
                    raise _Pkcs12Refused(PKCS12_DAMAGED_MESSAGE)
                nested = walk.encoded(walk.expect(value, _SEQUENCE))
                self._safe_contents_read(nested, password, depth=depth + 1)


def _wrong_password(*, secret_given: bool) -> _Pkcs12Refused:
    """The refusal when no candidate password opens the file."""
    message = PKCS12_PASSWORD_WRONG_MESSAGE if secret_given else PKCS12_PASSWORD_MISSING_MESSAGE
    return _Pkcs12Refused(message, FIELD_PASSPHRASE)
