"""Private keys: opening a PEM or DER key, asking for the passphrase only when it is needed and
only when the key derivation it declares is affordable; refusing key types no certificate uses
and RSA keys too large to support; proving an RSA key with one signature instead of
cryptography's primality checks (seconds for big keys); and writing the kept key as unencrypted
PKCS#8.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .der import _kdf_iterations
from .messages import (
    FIELD_PASSPHRASE,
    KDF_TOO_EXPENSIVE_MESSAGE,
    KEY_INCONSISTENT_MESSAGE,
    KEY_PASSPHRASE_MISSING_MESSAGE,
    KEY_PASSPHRASE_WRONG_MESSAGE,
    KEY_UNSUPPORTED_MESSAGE,
    KEY_UNUSABLE_TYPE_MESSAGE,
    MAX_KDF_ITERATIONS,
    MAX_RSA_BITS,
)
from .results import BundleResult, PrivateKey, _FieldContent

_ROUND_TRIP_MESSAGE = b"certmgr: does this key sign for its public key?"


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


def private_key_pem(key: PrivateKey) -> str:
    """``key`` as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
