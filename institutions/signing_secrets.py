"""The secrets that sign an institution's webhook messages (README, "Expiry monitoring":
Signed webhooks), in the form of the Standard Webhooks specification
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
"whsec_" and the base64 of 32 random bytes. Stored encrypted at rest (core/encryption.py),
like private keys; rotated by a manager, the previous secret signing beside the new one for
ROTATION_OVERLAP so that a receiver can be given the new one without losing a message."""

import base64
import secrets
from datetime import timedelta

from core import encryption

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)


def signing_secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signing_secret_encrypted_new() -> str:
    """A new secret, encrypted: the default of Institution.webhook_secret_encrypted."""
    return encryption.encrypt(signing_secret_new().encode("ascii"))
