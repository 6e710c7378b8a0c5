"""Password-based encryption, read and priced before anything is derived.

Contract:

* ``_protection_read(data, algorithm, encrypted_length)`` reads the AlgorithmIdentifier at
  ``algorithm`` (a DER value of ``data``) and returns a ``_Protection``: what it is in words,
  its cost in rounds (see ``messages``), and how to decrypt with it. It raises
  ``_ProtectionRefused`` with a plain-words message for what is not read (an unknown key
  derivation, pseudo-random function or cipher, malformed parameters) and for what costs more
  than one derivation may (``MAX_KDF_ROUNDS``; scrypt beyond ``SCRYPT_MAX_WORK``,
  ``SCRYPT_MAX_MEMORY`` or ``SCRYPT_MAX_LANES``). Nothing is derived by reading.
* The schemes read: PBES2 (RFC 8018) with PBKDF2 (HMAC-SHA-1, -224, -256, -384, -512) or
  scrypt (RFC 7914) and AES-128/192/256-CBC, DES-EDE3-CBC, DES-CBC or RC2-CBC; PBES1 of PKCS#5
  with MD5 or SHA-1 and DES or RC2; the password-based encryptions of PKCS#12 (RFC 7292,
  appendix C: SHA-1 with 3DES, RC2 or RC4). That is what OpenSSL, Keychain Access, Windows and
  Java write.
* ``_Protection.decrypt(password, data)`` derives and decrypts; it raises ``_WrongPassword``
  when the padding shows that the password is wrong. The password is the UTF-8 text typed, None
  for no password (PKCS#12 tells an empty password from none: b"" is the empty one).
* The caller charges ``_Protection.rounds`` to the upload's budget before calling ``decrypt``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .ciphers import (
    PYTHON_HASH_ROUNDS,
    RC2_BLOCK_ROUNDS,
    pbkdf1,
    pkcs12_key_and_iv,
    pkcs12_password,
    rc2_cbc_decrypt,
)
from .der import _der_children, _der_content, _der_integer
from .messages import (
    KDF_TOO_EXPENSIVE_MESSAGE,
    MAX_KDF_ROUNDS,
    PROTECTION_UNSUPPORTED_MESSAGE,
    SCRYPT_MAX_LANES,
    SCRYPT_MAX_MEMORY,
    SCRYPT_MAX_WORK,
)

_OCTET_STRING, _INTEGER, _SEQUENCE, _OID = 0x04, 0x02, 0x30, 0x06

_PBES2 = bytes.fromhex("2a864886f70d01050d")
_PBKDF2 = bytes.fromhex("2a864886f70d01050c")
_SCRYPT = bytes.fromhex("2b06010401da47040b")
# PKCS#5 PBES1 (RFC 8018, appendix A.3): the last byte names hash and cipher.
_PBES1_PREFIX = bytes.fromhex("2a864886f70d0105")
_PBES1 = {0x03: ("md5", "DES"), 0x06: ("md5", "RC2"), 0x0A: ("sha1", "DES"), 0x0B: ("sha1", "RC2")}
# PKCS#12 password-based encryption (RFC 7292, appendix C): cipher, key length, IV length.
_PKCS12_PBE_PREFIX = bytes.fromhex("2a864886f70d010c01")
_PKCS12_PBE = {
    0x01: ("RC4", 16, 0),
    0x02: ("RC4", 5, 0),
    0x03: ("3DES", 24, 8),
    0x04: ("3DES", 16, 8),
    0x05: ("RC2", 16, 8),
    0x06: ("RC2", 5, 8),
}
# PBKDF2's pseudo-random functions (RFC 8018, appendix B.1): hash, its size, and the cost of
# one iteration in rounds (SHA-512 has no instructions of its own on common processors: about
# 3.3 rounds measured, counted as 4).
_PRFS = {
    bytes.fromhex("2a864886f70d0207"): (hashes.SHA1, 20, 1),
    bytes.fromhex("2a864886f70d0208"): (hashes.SHA224, 28, 1),
    bytes.fromhex("2a864886f70d0209"): (hashes.SHA256, 32, 1),
    bytes.fromhex("2a864886f70d020a"): (hashes.SHA384, 48, 4),
    bytes.fromhex("2a864886f70d020b"): (hashes.SHA512, 64, 4),
}
_DEFAULT_PRF = bytes.fromhex("2a864886f70d0207")
# PBES2's ciphers: name and key length (RC2's comes from its parameters).
_CIPHERS = {
    bytes.fromhex("608648016503040102"): ("AES", 16),
    bytes.fromhex("608648016503040116"): ("AES", 24),
    bytes.fromhex("60864801650304012a"): ("AES", 32),
    bytes.fromhex("2a864886f70d0307"): ("3DES", 24),
    bytes.fromhex("2b0e030207"): ("DES", 8),
    bytes.fromhex("2a864886f70d0302"): ("RC2", 16),
}
# RFC 8018, appendix B.2.3: RC2's parameter version and its effective key bits.
_RC2_VERSIONS = {160: 40, 120: 64, 58: 128}
_SCRYPT_ROUNDS_PER_LANE_STEP = 2
_SCRYPT_LANE_OVERHEAD = 4


class _ProtectionRefused(Exception):
    """The protection is not read, or costs too much: ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _WrongPassword(Exception):
    """The password does not decrypt the data."""


@dataclass(frozen=True)
class _Protection:
    """A password-based encryption whose parameters were read and priced."""

    description: str
    rounds: int
    _decrypt: Callable[[bytes | None, bytes], bytes]

    def decrypt(self, password: bytes | None, data: bytes) -> bytes:
        """The plaintext; _WrongPassword when the password does not open ``data``."""
        try:
            return self._decrypt(password, data)
        except UnicodeDecodeError as error:
            raise _WrongPassword from error


def _protection_read(
    data: bytes, algorithm: tuple[int, int, int], encrypted_length: int
) -> _Protection:
    """The protection the AlgorithmIdentifier ``algorithm`` declares, priced and checked."""
    parts = _der_children(data, algorithm, limit=2) if algorithm[0] == _SEQUENCE else []
    if not parts or parts[0][0] != _OID:
        raise _ProtectionRefused(_unsupported("malformed parameters"))
    oid = _der_content(data, parts[0])
    parameters = parts[1] if len(parts) == 2 else None
    if oid == _PBES2:
        protection = _pbes2_read(data, parameters, encrypted_length)
    elif oid[:-1] == _PBES1_PREFIX and oid[-1] in _PBES1:
        protection = _pbes1_read(data, parameters, *_PBES1[oid[-1]])
    elif oid[:-1] == _PKCS12_PBE_PREFIX and oid[-1] in _PKCS12_PBE:
        protection = _pkcs12_pbe_read(data, parameters, encrypted_length, *_PKCS12_PBE[oid[-1]])
    else:
        raise _ProtectionRefused(_unsupported("an encryption scheme"))
    if protection.rounds > MAX_KDF_ROUNDS:
        raise _ProtectionRefused(KDF_TOO_EXPENSIVE_MESSAGE.format(what=protection.description))
    return protection


def _unsupported(what: str) -> str:
    return PROTECTION_UNSUPPORTED_MESSAGE.format(what=what)


def _sequence(data: bytes, value: tuple[int, int, int] | None, *, limit: int) -> list:
    """The children of a SEQUENCE, refused as malformed when ``value`` is not one."""
    if value is None or value[0] != _SEQUENCE:
        raise _ProtectionRefused(_unsupported("malformed parameters"))
    return _der_children(data, value, limit=limit)


def _positive(data: bytes, value: tuple[int, int, int] | None) -> int:
    """A positive INTEGER, saturated at 2**64; malformed parameters otherwise."""
    number = _der_integer(data, value) if value is not None and value[0] == _INTEGER else 0
    if number < 1:
        raise _ProtectionRefused(_unsupported("malformed parameters"))
    return number


def _octets(data: bytes, value: tuple[int, int, int] | None) -> bytes:
    if value is None or value[0] != _OCTET_STRING:
        raise _ProtectionRefused(_unsupported("malformed parameters"))
    return _der_content(data, value)


def _pbes2_read(
    data: bytes, parameters: tuple[int, int, int] | None, encrypted_length: int
) -> _Protection:
    """PBES2: { keyDerivationFunc, encryptionScheme } (RFC 8018, appendix A.4)."""
    kdf, scheme = (_sequence(data, parameters, limit=2) + [None, None])[:2]
    cipher_name, key_length, effective_bits, iv = _pbes2_cipher_read(data, scheme)
    kdf_parts = _sequence(data, kdf, limit=2)
    kdf_oid = _der_content(data, kdf_parts[0]) if kdf_parts and kdf_parts[0][0] == _OID else b""
    kdf_parameters = kdf_parts[1] if len(kdf_parts) == 2 else None
    if kdf_oid == _PBKDF2:
        description, rounds, derive = _pbkdf2_read(data, kdf_parameters, cipher_name, key_length)
    elif kdf_oid == _SCRYPT:
        description, rounds, derive = _scrypt_read(data, kdf_parameters, key_length)
    else:
        raise _ProtectionRefused(
            _unsupported("a key-derivation function other than PBKDF2 or scrypt")
        )
    if cipher_name == "RC2":
        rounds += _rc2_rounds(encrypted_length)

    def decrypt(password: bytes | None, encrypted: bytes) -> bytes:
        key = derive(password or b"")
        return _cbc_decrypt(cipher_name, key, iv, encrypted, effective_bits=effective_bits)

    return _Protection(f"{description} with {cipher_name}-CBC", rounds, decrypt)


def _pbes2_cipher_read(
    data: bytes, scheme: tuple[int, int, int] | None
) -> tuple[str, int, int, bytes]:
    """Cipher name, key length, RC2 effective bits and IV of PBES2's encryptionScheme."""
    parts = _sequence(data, scheme, limit=2)
    oid = _der_content(data, parts[0]) if parts and parts[0][0] == _OID else b""
    if oid not in _CIPHERS or len(parts) != 2:
        raise _ProtectionRefused(_unsupported("a cipher other than AES-CBC or 3DES-CBC"))
    name, key_length = _CIPHERS[oid]
    effective_bits = 0
    if name == "RC2":
        rc2 = _sequence(data, parts[1], limit=2)
        version = _positive(data, rc2[0]) if len(rc2) == 2 else 32
        effective_bits = _RC2_VERSIONS.get(version, version if 256 <= version <= 1024 else 0)
        if not effective_bits:
            raise _ProtectionRefused(_unsupported("RC2 with an unusual key size"))
        iv = _octets(data, rc2[-1] if rc2 else None)
    else:
        iv = _octets(data, parts[1])
    if len(iv) != (16 if name == "AES" else 8):
        raise _ProtectionRefused(_unsupported("malformed parameters"))
    return name, key_length, effective_bits, iv


def _pbkdf2_read(
    data: bytes, parameters: tuple[int, int, int] | None, cipher_name: str, key_length: int
) -> tuple[str, int, Callable[[bytes], bytes]]:
    """PBKDF2-params: { salt, iterationCount, keyLength OPTIONAL, prf DEFAULT SHA-1 }."""
    parts = _sequence(data, parameters, limit=4)
    salt = _octets(data, parts[0] if parts else None)
    iterations = _positive(data, parts[1] if len(parts) > 1 else None)
    prf_oid = _DEFAULT_PRF
    for part in parts[2:]:
        if part[0] == _INTEGER and cipher_name == "RC2":
            # RC2's key length is PBKDF2's keyLength (RFC 8018, appendix B.2.3).
            key_length = _positive(data, part)
            if key_length > 128:
                raise _ProtectionRefused(_unsupported("malformed parameters"))
        elif part[0] == _SEQUENCE:
            prf = _der_children(data, part, limit=1)
            prf_oid = _der_content(data, prf[0]) if prf and prf[0][0] == _OID else b""
    if prf_oid not in _PRFS:
        raise _ProtectionRefused(_unsupported("PBKDF2 with an unusual hash"))
    algorithm, digest_size, weight = _PRFS[prf_oid]
    blocks = -(-key_length // digest_size)
    rounds = iterations * blocks * weight
    description = f"PBKDF2 with {iterations:,} iterations of HMAC-{algorithm.name.upper()}"

    def derive(password: bytes) -> bytes:
        return PBKDF2HMAC(algorithm(), key_length, salt, iterations).derive(password)

    return description, rounds, derive


def _scrypt_read(
    data: bytes, parameters: tuple[int, int, int] | None, key_length: int
) -> tuple[str, int, Callable[[bytes], bytes]]:
    """scrypt-params: { salt, costParameter N, blockSize r, parallelizationParameter p,
    keyLength OPTIONAL } (RFC 7914, section 7)."""
    parts = _sequence(data, parameters, limit=5)
    salt = _octets(data, parts[0] if parts else None)
    n, r, p = (_positive(data, parts[i] if len(parts) > i else None) for i in (1, 2, 3))
    memory = 128 * n * r
    description = f"scrypt with N={n:,}, r={r:,}, p={p:,} ({memory / 2**20:,.0f} MiB of memory)"
    if n * r * p > SCRYPT_MAX_WORK or memory > SCRYPT_MAX_MEMORY or r * p > SCRYPT_MAX_LANES:
        raise _ProtectionRefused(KDF_TOO_EXPENSIVE_MESSAGE.format(what=description))
    if n < 2 or n & (n - 1):
        raise _ProtectionRefused(_unsupported("malformed parameters"))
    rounds = _SCRYPT_ROUNDS_PER_LANE_STEP * r * p * (n + _SCRYPT_LANE_OVERHEAD)

    def derive(password: bytes) -> bytes:
        try:
            return Scrypt(salt, key_length, n, r, p).derive(password)
        except (ValueError, MemoryError) as error:
            # Parameters OpenSSL refuses (N must be below 2^(16·r)): nothing was derived.
            raise _WrongPassword from error

    return description, rounds, derive


def _pbes1_read(
    data: bytes, parameters: tuple[int, int, int] | None, hash_name: str, cipher_name: str
) -> _Protection:
    """PKCS#5 PBES1: PBKDF1 and DES or RC2 (RFC 8018, section 6.1)."""
    parts = _sequence(data, parameters, limit=2)
    salt = _octets(data, parts[0] if parts else None)
    iterations = _positive(data, parts[1] if len(parts) > 1 else None)
    if len(salt) != 8:
        raise _ProtectionRefused(_unsupported("malformed parameters"))
    rounds = iterations * PYTHON_HASH_ROUNDS[hash_name]

    def decrypt(password: bytes | None, encrypted: bytes) -> bytes:
        derived = pbkdf1(hash_name, password or b"", salt, iterations)
        key, iv = derived[:8], derived[8:]
        return _cbc_decrypt(cipher_name, key, iv, encrypted, effective_bits=64)

    description = f"PBES1 ({hash_name.upper()}, {iterations:,} iterations) with {cipher_name}"
    return _Protection(description, rounds, decrypt)


def _pkcs12_pbe_read(
    data: bytes,
    parameters: tuple[int, int, int] | None,
    encrypted_length: int,
    cipher_name: str,
    key_length: int,
    iv_length: int,
) -> _Protection:
    """pkcs-12PbeParams: { salt, iterations } (RFC 7292, appendix C)."""
    parts = _sequence(data, parameters, limit=2)
    salt = _octets(data, parts[0] if parts else None)
    iterations = _positive(data, parts[1] if len(parts) > 1 else None)
    blocks = -(-key_length // 20) + -(-iv_length // 20)
    rounds = iterations * blocks * PYTHON_HASH_ROUNDS["sha1"]
    if cipher_name == "RC2":
        rounds += _rc2_rounds(encrypted_length)

    def decrypt(password: bytes | None, encrypted: bytes) -> bytes:
        key, iv = pkcs12_key_and_iv(
            pkcs12_password(password), salt, iterations, key_length, iv_length
        )
        if cipher_name == "RC4":
            return Cipher(ARC4(key), mode=None).decryptor().update(encrypted)
        return _cbc_decrypt(cipher_name, key, iv, encrypted, effective_bits=8 * key_length)

    description = f"PKCS#12 encryption with {iterations:,} iterations of SHA-1 and {cipher_name}"
    return _Protection(description, rounds, decrypt)


def _rc2_rounds(encrypted_length: int) -> int:
    """RC2 runs in Python: its decryption is priced with the derivation."""
    return (encrypted_length // 8 + 1) * RC2_BLOCK_ROUNDS


def _cbc_decrypt(
    cipher_name: str, key: bytes, iv: bytes, data: bytes, *, effective_bits: int
) -> bytes:
    """Decrypt CBC ``data`` and remove its padding; _WrongPassword when the padding is wrong."""
    block = 16 if cipher_name == "AES" else 8
    if not data or len(data) % block:
        raise _WrongPassword
    if cipher_name == "RC2":
        plain = rc2_cbc_decrypt(key, effective_bits, iv, data)
    else:
        # Single DES is 3DES with one key three times.
        des_key = key * 3 if len(key) == 8 else key
        algorithm = algorithms.AES(key) if cipher_name == "AES" else TripleDES(des_key)
        decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
    padding = plain[-1]
    if not 1 <= padding <= block or plain[-padding:] != bytes([padding]) * padding:
        raise _WrongPassword
    return plain[:-padding]
