"""Private keys at rest: encrypted with MultiFernet, first key encrypts, every key decrypts."""

import pytest
from cryptography.fernet import Fernet, InvalidToken

from certificates.models import Certificate
from core import encryption


def test_a_stored_key_is_encrypted_and_never_in_the_clear(acme, make_certificate):
    certificate = make_certificate(acme)
    stored = Certificate.objects.values_list("private_key_encrypted", flat=True).get()
    assert "PRIVATE KEY" not in stored
    assert certificate.private_key_pem().startswith("-----BEGIN PRIVATE KEY-----")


def test_the_first_key_encrypts_and_older_keys_still_decrypt(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CERTMGR_ENCRYPTION_KEYS = [old]
    token = encryption.encrypt(b"secret")

    settings.CERTMGR_ENCRYPTION_KEYS = [new, old]
    assert encryption.decrypt(token) == b"secret"
    fresh = encryption.encrypt(b"secret")

    settings.CERTMGR_ENCRYPTION_KEYS = [new]
    assert encryption.decrypt(fresh) == b"secret"
    with pytest.raises(InvalidToken):
        encryption.decrypt(token)
