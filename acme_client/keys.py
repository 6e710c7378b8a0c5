"""The private key of a managed certificate: kept across renewals, or new (README, "Managed
certificates" and "Edge and probe").

nginx opens a hostname's ``.crt`` and ``.key`` separately at every handshake, so while the
edge swaps a certificate *and* its key, a handshake can pair one with the other and fail. A
renewal that keeps the key changes only the ``.crt``: whichever certificate nginx reads, the
key on disk is its key, and no handshake can fail (saleschannels/edge.py leaves the unchanged
key file alone). This is certbot's ``--reuse-key`` and cert-manager's ``rotationPolicy:
Never`` (https://cert-manager.io/docs/usage/certificate/#configuring-private-key-rotation);
the cost is that a key, once exposed, stays useful to whoever holds it until it is rotated.

A new key is made for a first issuance (no managed certificate yet), when the previous key is
not of the configured ``ACME_KEY_TYPE`` (the operator changed it), and for every issuance
when the operator turned ``ACME_REUSE_KEY`` off.
"""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings

from certificates.models import Certificate

from . import protocol

logger = logging.getLogger(__name__)


def key_is_of_type(key_pem: bytes, key_type: str) -> bool:
    """Whether a PEM private key is what ACME_KEY_TYPE `key_type` makes (ec256, rsa2048)."""
    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    if key_type == "ec256":
        return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    if key_type == "rsa2048":
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    return False


def certificate_key_for(previous: Certificate | None) -> tuple[bytes, bool]:
    """(PEM private key for the next certificate, whether it is the previous one's key).

    `previous` is the channel's active certificate; only a managed one's key is kept (an
    uploaded certificate's key belongs to whoever uploaded it).
    """
    key_type = settings.ACME_KEY_TYPE
    if (
        settings.ACME_REUSE_KEY
        and previous is not None
        and previous.source == Certificate.Source.MANAGED
        and previous.has_private_key
    ):
        key_pem = previous.private_key_pem().encode()
        if key_is_of_type(key_pem, key_type):
            return key_pem, True
        logger.info("certificate %s: key is not %s, a new key is made", previous.pk, key_type)
    return protocol.certificate_key_generate(key_type), False
