"""Encryption at rest for private keys.

MultiFernet over the keys of settings.CERTMGR_ENCRYPTION_KEYS: the first key encrypts, every
key decrypts, so a new key can be put first and the old ones removed once every row has been
re-encrypted. Keys are read when used, never at import time.
"""

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.CERTMGR_ENCRYPTION_KEYS])


def encrypt(plaintext: bytes) -> str:
    """Return the Fernet token (ASCII) for plaintext."""
    return _fernet().encrypt(plaintext).decode("ascii")


def decrypt(token: str) -> bytes:
    """Return the plaintext of a token made by encrypt() under any configured key."""
    return _fernet().decrypt(token.encode("ascii"))
