"""API token secrets (README, "API"): 256 random bits, stored only as their SHA-256.

A secret of that entropy cannot be guessed or brute-forced from its hash, so a fast hash is
enough (unlike passwords) and lets authentication find the token with one indexed lookup;
the stored hash is then compared in constant time (hmac.compare_digest).
"""

import hashlib
import hmac
import secrets

SECRET_PREFIX = "certmgr_"
PREFIX_SHOWN = 12


def secret_new() -> str:
    """A new token secret: `certmgr_` and 43 URL-safe characters (32 random bytes)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)
