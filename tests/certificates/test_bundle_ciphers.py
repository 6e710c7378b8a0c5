"""The primitives the parser runs itself (certificates/bundle/ciphers.py), against OpenSSL.

RC2 with 128 effective bits is checked against cryptography's; 40-bit RC2, which cryptography
does not offer, against a block OpenSSL encrypted (openssl enc -rc2-40-cbc -K 0102030405
-iv 0001020304050607, with the legacy provider). The PKCS#12 key derivation and PBKDF1 are
proven by the files they open in tests/certificates/test_bundle.py (cryptography-vectors).
"""

import os

from cryptography.hazmat.decrepit.ciphers.algorithms import RC2
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from certificates.bundle.ciphers import pkcs12_password, rc2_cbc_decrypt

PLAIN = b"hello world 12345678\x04\x04\x04\x04"


def test_rc2_with_128_effective_bits_decrypts_as_cryptography_encrypts():
    key, iv = os.urandom(16), os.urandom(8)
    encryptor = Cipher(RC2(key), modes.CBC(iv)).encryptor()
    data = os.urandom(64)
    encrypted = encryptor.update(data) + encryptor.finalize()
    assert rc2_cbc_decrypt(key, 128, iv, encrypted) == data


def test_rc2_with_40_effective_bits_decrypts_what_openssl_encrypted():
    encrypted = bytes.fromhex("511a3d0aebca506f3bed2401aed2e7f809f553be45e6734d")
    key, iv = bytes.fromhex("0102030405"), bytes.fromhex("0001020304050607")
    assert rc2_cbc_decrypt(key, 40, iv, encrypted) == PLAIN


def test_a_pkcs12_password_is_a_terminated_bmp_string_and_none_is_empty():
    assert pkcs12_password(b"pw") == b"\x00p\x00w\x00\x00"
    assert pkcs12_password(b"") == b"\x00\x00"
    assert pkcs12_password(None) == b""
