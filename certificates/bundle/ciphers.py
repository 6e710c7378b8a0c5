"""The primitives of password-based encryption that cryptography does not offer: the PKCS#12
key derivation (RFC 7292, appendix B.2), PBKDF1 (RFC 8018, section 5.1), OpenSSL's
EVP_BytesToKey for legacy encrypted PEM keys (one MD5 round, as OpenSSL writes them), and RC2
decryption (RFC 2268) for any effective key size (cryptography's RC2 has only 128 bits; PKCS#12
files from Keychain Access and older OpenSSL encrypt their certificates with 40-bit RC2).

These run in Python, so they are slower than OpenSSL: their callers price them before calling
(``PYTHON_HASH_ROUNDS``, ``RC2_BLOCK_ROUNDS``) and never call them beyond the budget of one
upload. Nothing here reads untrusted structure: the parameters come already checked.
"""

from __future__ import annotations

import hashlib

# The cost of one hash of the Python loops and of one RC2 block, in the rounds the budget
# counts (one PBKDF2-HMAC-SHA-256 iteration of one block, about 0.14 µs measured on a 2-core
# machine): an MD5, SHA-1 or SHA-256 hash here costs about 3 rounds, SHA-512 about 5, an RC2
# block about 210 (30 µs). Rounded up.
PYTHON_HASH_ROUNDS = {"md5": 4, "sha1": 4, "sha224": 4, "sha256": 4, "sha384": 6, "sha512": 6}
RC2_BLOCK_ROUNDS = 256

_PKCS12_ENCRYPTION_KEY, _PKCS12_IV, _PKCS12_MAC_KEY = 1, 2, 3

# RFC 2268, section 2: the permutation PITABLE, "based on the digits of pi".
_RC2_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)


def pkcs12_derive(
    hash_name: str, password: bytes, salt: bytes, purpose: int, iterations: int, length: int
) -> bytes:
    """RFC 7292, appendix B.2: ``length`` bytes for ``purpose`` (1 key, 2 IV, 3 MAC key).

    ``password`` is already in its PKCS#12 form: the BMPString with two terminating zero bytes,
    or empty for no password.
    """
    new = getattr(hashlib, hash_name)
    digest_size, block = new().digest_size, new().block_size
    diversifier = bytes([purpose]) * block
    stretched = _repeat(salt, block) + _repeat(password, block)
    derived = b""
    while True:
        result = new(diversifier + stretched).digest()
        for _ in range(iterations - 1):
            result = new(result).digest()
        derived += result
        if len(derived) >= length:
            return derived[:length]
        adder = int.from_bytes((result * (block // digest_size + 1))[:block], "big") + 1
        stretched = b"".join(
            (
                (int.from_bytes(stretched[i : i + block], "big") + adder) % (1 << (8 * block))
            ).to_bytes(block, "big")
            for i in range(0, len(stretched), block)
        )


def pkcs12_password(password: bytes | None) -> bytes:
    """A UTF-8 password as the BMPString PKCS#12 derives from; None (no password) is empty."""
    if password is None:
        return b""
    return password.decode("utf-8").encode("utf-16-be") + b"\x00\x00"


def pkcs12_key_and_iv(
    password: bytes, salt: bytes, iterations: int, key_length: int, iv_length: int
) -> tuple[bytes, bytes]:
    """The key and IV of a PKCS#12 password-based encryption (SHA-1, RFC 7292 appendix C)."""
    key = pkcs12_derive("sha1", password, salt, _PKCS12_ENCRYPTION_KEY, iterations, key_length)
    iv = (
        pkcs12_derive("sha1", password, salt, _PKCS12_IV, iterations, iv_length)
        if iv_length
        else b""
    )
    return key, iv


def pkcs12_mac_key(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """The HMAC key of a PKCS#12 integrity check."""
    length = getattr(hashlib, hash_name)().digest_size
    return pkcs12_derive(hash_name, password, salt, _PKCS12_MAC_KEY, iterations, length)


def pbkdf1(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 8018, section 5.1: 16 bytes (a DES key and its IV) from MD5 or SHA-1."""
    new = getattr(hashlib, hash_name)
    derived = new(password + salt).digest()
    for _ in range(iterations - 1):
        derived = new(derived).digest()
    return derived[:16]


def evp_bytes_to_key(password: bytes, salt: bytes, length: int) -> bytes:
    """OpenSSL's EVP_BytesToKey with MD5 and one round: the key of a legacy encrypted PEM key."""
    derived, block = b"", b""
    while len(derived) < length:
        block = hashlib.md5(block + password + salt, usedforsecurity=False).digest()
        derived += block
    return derived[:length]


def rc2_cbc_decrypt(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    """RC2 in CBC mode (RFC 2268), padding left in place; ``len(data)`` is a multiple of 8."""
    words = _rc2_key_expand(key, effective_bits)
    plain = bytearray()
    previous = iv
    for start in range(0, len(data), 8):
        block = data[start : start + 8]
        decrypted = _rc2_block_decrypt(words, block)
        plain += bytes(a ^ b for a, b in zip(decrypted, previous, strict=True))
        previous = block
    return bytes(plain)


def _repeat(value: bytes, block: int) -> bytes:
    """``value`` repeated to the next multiple of ``block`` bytes (empty stays empty)."""
    if not value:
        return b""
    length = block * -(-len(value) // block)
    return (value * (length // len(value) + 1))[:length]


def _rc2_key_expand(key: bytes, effective_bits: int) -> list[int]:
    """RFC 2268, section 2: the 64 words of the expanded key."""
    expanded = bytearray(key) + bytearray(128 - len(key))
    for i in range(len(key), 128):
        expanded[i] = _RC2_PITABLE[(expanded[i - 1] + expanded[i - len(key)]) & 0xFF]
    effective_bytes = (effective_bits + 7) // 8
    mask = 0xFF >> (8 * effective_bytes - effective_bits)
    position = 128 - effective_bytes
    expanded[position] = _RC2_PITABLE[expanded[position] & mask]
    for i in range(position - 1, -1, -1):
        expanded[i] = _RC2_PITABLE[expanded[i + 1] ^ expanded[i + effective_bytes]]
    return [expanded[2 * i] | expanded[2 * i + 1] << 8 for i in range(64)]


def _rc2_block_decrypt(words: list[int], block: bytes) -> bytes:
    """RFC 2268, section 4: one 8-byte block."""
    r = [block[0] | block[1] << 8, block[2] | block[3] << 8]
    r += [block[4] | block[5] << 8, block[6] | block[7] << 8]
    j = 63
    for round_number in range(15, -1, -1):
        for i, shift in ((3, 5), (2, 3), (1, 2), (0, 1)):
            r[i] = ((r[i] >> shift) | (r[i] << (16 - shift))) & 0xFFFF
            r[i] = (r[i] - words[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & 0xFFFF
            j -= 1
        if round_number in (11, 5):
            for i in (3, 2, 1, 0):
                r[i] = (r[i] - words[r[i - 1] & 63]) & 0xFFFF
    return b"".join(word.to_bytes(2, "little") for word in r)
