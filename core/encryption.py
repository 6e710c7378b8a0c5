"""Encryption at rest for private keys.

MultiFernet over the keys of settings.CERTMGR_ENCRYPTION_KEYS: the first key encrypts, every
key decrypts, so a new key can be put first and the old ones removed once every row has been
re-encrypted (`manage.py rotate_encryption_keys`, services.encryption_keys_rotate). Keys are
read when used, never at import time.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernets() -> list[Fernet]:
    return [Fernet(key.encode()) for key in settings.CERTMGR_ENCRYPTION_KEYS]


def _fernet() -> MultiFernet:
    return MultiFernet(_fernets())


def encrypt(plaintext: bytes) -> str:
    """Return the Fernet token (ASCII) for plaintext."""
    return _fernet().encrypt(plaintext).decode("ascii")


def decrypt(token: str) -> bytes:
    """Return the plaintext of a token made by encrypt() under any configured key."""
    return _fernet().decrypt(token.encode("ascii"))


def token_rotate(token: str) -> str | None:
    """The token re-encrypted under the first configured key, or None when it already is.

    Raises InvalidToken when no configured key decrypts it. A token already under the first
    key is left alone (its signature is checked, nothing is decrypted), so that rotating twice
    changes nothing the second time.
    """
    fernets = _fernets()
    data = _token_bytes(token)
    try:
        fernets[0].extract_timestamp(data)  # verifies the signature under the first key only
        return None
    except InvalidToken:
        pass
    return MultiFernet(fernets).rotate(data).decode("ascii")


def token_is_current(token: str) -> bool:
    """True when the token is under the first configured key, False when under another one.

    Raises InvalidToken when no configured key decrypts it. Only signatures are checked.
    """
    data = _token_bytes(token)
    for index, fernet in enumerate(_fernets()):
        try:
            fernet.extract_timestamp(data)
        except InvalidToken:
            continue
        return index == 0
    raise InvalidToken


def _token_bytes(token: str) -> bytes:
    try:
        return token.encode("ascii")
    except UnicodeEncodeError as error:  # a damaged value: no key can decrypt it
        raise InvalidToken from error
