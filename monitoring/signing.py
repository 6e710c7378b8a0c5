"""Signatures of webhook messages, as the Standard Webhooks specification defines them
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md),
made by its reference library (PyPI's standardwebhooks): a receiver verifies them with that
library in any language, or by hand (README, "Expiry monitoring": Signed webhooks).

Three headers: `webhook-id` (one per message, the same on each retry of it, so a receiver can
drop a duplicate), `webhook-timestamp` (seconds since the epoch, of this attempt) and
`webhook-signature`: "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per secret, separated
by spaces, so that during a rotation both the new and the previous secret sign."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook


def message_id_new() -> str:
    return f"msg_{uuid.uuid4().hex}"


def signature_headers(
    secrets: Sequence[str], body: bytes, *, message_id: str, at: datetime
) -> dict[str, str]:
    """The headers that sign `body` sent at `at`; none without a secret."""
    if not secrets:
        return {}
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body) for secret in secrets
        ),
    }
