"""Private keys: opening a DER key (from a PEM block or a binary file) so that what it costs is
known before it is paid.

* The key's structure is read first (``der._key_shape``): DSA, DH, X25519 and X448 keys, which
  no certificate uses here, and RSA keys over ``MAX_RSA_BITS`` are refused from their DER,
  before cryptography loads them (loading a DSA or DH key computes a modular exponentiation of
  the size the file declares: seconds to minutes for large parameters).
* Encrypted keys are decrypted here (``pbe``), not by cryptography, so that their key
  derivation is read and priced first (``_KdfBudget``: per derivation and per upload) and the
  decrypted key is inspected like any other before it is loaded. Legacy encrypted PEM keys
  ("Proc-Type: 4,ENCRYPTED" with DEK-Info, RFC 1421) derive their key with one MD5 round
  (OpenSSL's EVP_BytesToKey): cheap, but counted like the others.
* The passphrase is asked for only when a key is encrypted; one typed for an unencrypted key
  is ignored.
* cryptography's RSA validation (primality tests: seconds for big keys, minutes for composite
  factors) is skipped; ``_key_proof_problem`` proves the one key an upload keeps with one
  signature instead.
* The kept key is written as unencrypted PKCS#8.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from .ciphers import PYTHON_HASH_ROUNDS, evp_bytes_to_key
from .der import (
    ALGORITHM_DH,
    ALGORITHM_KEY_AGREEMENT,
    KEY_DSA,
    KEY_ENCRYPTED_PKCS8,
    KEY_PKCS8,
    KEY_RSA,
    _der_content,
    _key_shape,
    _KeyShape,
)
from .messages import (
    FIELD_PASSPHRASE,
    KEY_INCONSISTENT_MESSAGE,
    KEY_PASSPHRASE_MISSING_MESSAGE,
    KEY_PASSPHRASE_WRONG_MESSAGE,
    KEY_UNSUPPORTED_MESSAGE,
    KEY_UNUSABLE_TYPE_MESSAGE,
    MAX_RSA_BITS,
    PROTECTION_UNSUPPORTED_MESSAGE,
    RSA_TOO_LARGE_MESSAGE,
    UPLOAD_KDF_BUDGET_MESSAGE,
)
from .pbe import _cbc_decrypt, _protection_read, _ProtectionRefused, _WrongPassword
from .results import BundleResult, PrivateKey, _FieldContent, _KdfBudget

_ROUND_TRIP_MESSAGE = b"certmgr: does this key sign for its public key?"
# Legacy PEM encryption (DEK-Info): the ciphers OpenSSL writes, with their key lengths.
_LEGACY_CIPHERS = {
    "AES-128-CBC": ("AES", 16),
    "AES-192-CBC": ("AES", 24),
    "AES-256-CBC": ("AES", 32),
    "DES-EDE3-CBC": ("3DES", 24),
    "DES-CBC": ("DES", 8),
}
_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


class _KeyRefused(Exception):
    """The key is not opened: ``field_name`` and ``message`` say where and why ("" when the
    block is only damaged)."""

    def __init__(self, field_name: str = "", message: str = "") -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message


def _key_add(
    result: BundleResult,
    *,
    content: _FieldContent,
    der: bytes,
    headers: list[bytes],
    secret: bytes | None,
    budget: _KdfBudget,
    damaged: Callable[[], None],
) -> None:
    """Open the DER key ``der`` (with the RFC 1421 ``headers`` of its PEM block, if any)."""
    try:
        key = _key_open(
            der, headers=headers, field_name=content.field_name, secret=secret, budget=budget
        )
    except _KeyRefused as refusal:
        if refusal.message:
            content.problems = True
            result.error_add(refusal.field_name, refusal.message)
        else:
            damaged()
        return
    _key_accept(result, content=content, key=key)


def _key_open(
    der: bytes, *, headers: list[bytes], field_name: str, secret: bytes | None, budget: _KdfBudget
) -> object:
    """The key ``der`` holds, decrypted and inspected before it is loaded; _KeyRefused else."""
    fields = _headers(headers)
    if "Proc-Type" in fields:
        der = _legacy_decrypt(der, fields, field_name=field_name, secret=secret, budget=budget)
    shape = _key_shape(der)
    if shape is None:
        raise _KeyRefused()
    if shape.kind == KEY_ENCRYPTED_PKCS8:
        der = _pkcs8_decrypt(der, shape, field_name=field_name, secret=secret, budget=budget)
        shape = _key_shape(der)
        if shape is None or shape.kind != KEY_PKCS8:
            # Decrypted with the wrong password, the padding happened to look right.
            raise _KeyRefused(FIELD_PASSPHRASE, KEY_PASSPHRASE_WRONG_MESSAGE)
    problem = _shape_problem(shape)
    if problem:
        raise _KeyRefused(field_name, problem)
    try:
        return serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=True
        )
    except UnsupportedAlgorithm as error:
        # A well-formed key cryptography cannot use, such as one on a custom curve given by
        # explicit parameters (explicit parameters of P-256/384/521 are read as those curves).
        raise _KeyRefused(field_name, KEY_UNSUPPORTED_MESSAGE) from error
    except (ValueError, TypeError) as error:
        raise _KeyRefused() from error


def _shape_problem(shape: _KeyShape) -> str:
    """Why a key of this shape is refused before it is loaded, "" when it is not."""
    if shape.algorithm in (KEY_DSA, ALGORITHM_DH, ALGORITHM_KEY_AGREEMENT):
        return KEY_UNUSABLE_TYPE_MESSAGE
    if shape.algorithm == KEY_RSA and shape.rsa_bits > MAX_RSA_BITS:
        return RSA_TOO_LARGE_MESSAGE.format(bits=shape.rsa_bits, limit=MAX_RSA_BITS)
    return ""


def _headers(headers: list[bytes]) -> dict[str, str]:
    """RFC 1421 header lines as a dictionary ("Proc-Type" -> "4,ENCRYPTED")."""
    fields = {}
    for line in headers:
        name, _, value = line.decode("ascii", errors="replace").partition(":")
        fields[name.strip()] = value.strip()
    return fields


def _spend(budget: _KdfBudget, rounds: int, field_name: str) -> None:
    if not budget.spend(rounds):
        raise _KeyRefused(field_name, UPLOAD_KDF_BUDGET_MESSAGE)


def _legacy_decrypt(
    der: bytes,
    fields: dict[str, str],
    *,
    field_name: str,
    secret: bytes | None,
    budget: _KdfBudget,
) -> bytes:
    """The content of a legacy encrypted PEM key (Proc-Type: 4,ENCRYPTED and DEK-Info)."""
    cipher_name, _, iv_hex = fields.get("DEK-Info", "").partition(",")
    try:
        iv = bytes.fromhex(iv_hex)
    except ValueError as error:
        raise _KeyRefused() from error
    if fields["Proc-Type"] != "4,ENCRYPTED" or len(iv) < 8:
        raise _KeyRefused()
    if cipher_name not in _LEGACY_CIPHERS:
        what = f"the cipher {cipher_name[:40]}"
        raise _KeyRefused(field_name, PROTECTION_UNSUPPORTED_MESSAGE.format(what=what))
    if not secret:
        raise _KeyRefused(FIELD_PASSPHRASE, KEY_PASSPHRASE_MISSING_MESSAGE)
    name, key_length = _LEGACY_CIPHERS[cipher_name]
    if len(iv) != (16 if name == "AES" else 8):
        raise _KeyRefused()
    _spend(budget, 2 * PYTHON_HASH_ROUNDS["md5"], field_name)
    key = evp_bytes_to_key(secret, iv[:8], key_length)
    try:
        return _cbc_decrypt(name, key, iv, der, effective_bits=0)
    except _WrongPassword as error:
        raise _KeyRefused(FIELD_PASSPHRASE, KEY_PASSPHRASE_WRONG_MESSAGE) from error


def _pkcs8_decrypt(
    der: bytes,
    shape: _KeyShape,
    *,
    field_name: str,
    secret: bytes | None,
    budget: _KdfBudget,
) -> bytes:
    """The PrivateKeyInfo an EncryptedPrivateKeyInfo holds, its protection priced first."""
    assert shape.encryption is not None and shape.encrypted is not None
    encrypted = _der_content(der, shape.encrypted)
    try:
        protection = _protection_read(der, shape.encryption, len(encrypted))
    except _ProtectionRefused as refusal:
        raise _KeyRefused(field_name, refusal.message) from refusal
    if not secret:
        raise _KeyRefused(FIELD_PASSPHRASE, KEY_PASSPHRASE_MISSING_MESSAGE)
    _spend(budget, protection.rounds, field_name)
    try:
        return protection.decrypt(secret, encrypted)
    except _WrongPassword as error:
        raise _KeyRefused(FIELD_PASSPHRASE, KEY_PASSPHRASE_WRONG_MESSAGE) from error


def _key_accept(result: BundleResult, *, content: _FieldContent, key: object) -> None:
    """Keep ``key`` unless it is unusable for a certificate."""
    problem = ""
    if not isinstance(key, _SIGNING_KEYS):
        # DSA keys (no browser takes their certificates), X25519/X448 and DH keys.
        problem = KEY_UNUSABLE_TYPE_MESSAGE
    elif isinstance(key, rsa.RSAPrivateKey) and key.key_size > MAX_RSA_BITS:
        problem = RSA_TOO_LARGE_MESSAGE.format(bits=key.key_size, limit=MAX_RSA_BITS)
    if problem:
        content.problems = True
        result.error_add(content.field_name, problem)
    else:
        content.keys.append(key)  # type: ignore[arg-type]


def _key_proof_problem(key: PrivateKey) -> str:
    """Why ``key`` cannot serve a certificate although it loaded, "" when it can.

    An RSA key must sign for its own public key: cryptography's validation was skipped.
    """
    if not isinstance(key, rsa.RSAPrivateKey):
        return ""
    try:
        signature = key.sign(_ROUND_TRIP_MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        key.public_key().verify(signature, _ROUND_TRIP_MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return KEY_INCONSISTENT_MESSAGE
    return ""


def private_key_pem(key: PrivateKey) -> str:
    """``key`` as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
