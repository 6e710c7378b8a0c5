"""A tiny DER walker, and what it tells about a key before any library loads it.

The walker follows only definite lengths of at most four bytes and never raises: a malformed
value ends the walk. On top of it, ``_key_shape`` says what kind of private-key structure some
DER bytes have (PKCS#8, encrypted PKCS#8, PKCS#1 RSA, SEC1 EC, OpenSSL's DSA form), which
algorithm a PKCS#8 key names and how many bits an RSA modulus has, and
``_spki_size`` reads the sizes of the RSA or DSA key in a certificate's SubjectPublicKeyInfo
(``_tbs_spki``), on which the cost of verifying a signature with it depends. Loading a
key can cost what its file declares (a modular exponentiation for DSA and DH keys, validation
of RSA keys); these readings let the parser refuse such keys without loading them.
"""

from __future__ import annotations

from dataclasses import dataclass

_SEQUENCE, _INTEGER, _OCTET_STRING, _OID, _BIT_STRING = 0x30, 0x02, 0x04, 0x06, 0x03

# OID contents (without tag and length) of the key algorithms a PKCS#8 key may name.
_RSA_OIDS = (bytes.fromhex("2a864886f70d010101"), bytes.fromhex("2a864886f70d01010a"))
_EC_OID = bytes.fromhex("2a8648ce3d0201")
_DSA_OID = bytes.fromhex("2a8648ce380401")
_DH_OIDS = (bytes.fromhex("2a864886f70d010301"), bytes.fromhex("2a8648ce3e0201"))
_X25519_X448_OIDS = (bytes.fromhex("2b656e"), bytes.fromhex("2b656f"))
_EDDSA_OIDS = (bytes.fromhex("2b6570"), bytes.fromhex("2b6571"))

# What _KeyShape.kind may be.
KEY_PKCS8 = "pkcs8"
KEY_ENCRYPTED_PKCS8 = "encrypted pkcs8"
KEY_RSA = "rsa"
KEY_EC = "ec"
KEY_DSA = "dsa"
# What _KeyShape.algorithm may be, besides "rsa", "ec" and "dsa".
ALGORITHM_DH = "dh"
ALGORITHM_KEY_AGREEMENT = "x25519/x448"
ALGORITHM_EDDSA = "eddsa"
ALGORITHM_OTHER = "other"


@dataclass(frozen=True)
class _KeyShape:
    """What a DER private key is, read from its structure alone."""

    kind: str
    algorithm: str = ""
    # The size of an RSA modulus in bits (0 for other keys).
    rsa_bits: int = 0
    # For an encrypted PKCS#8 key: its AlgorithmIdentifier and its encrypted content.
    encryption: tuple[int, int, int] | None = None
    encrypted: tuple[int, int, int] | None = None


def _der_value(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """Tag, content start and content end of the DER value at ``offset``; None if malformed."""
    if offset + 2 > len(data):
        return None
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        length_bytes = length & 0x7F
        # Indefinite (BER) and absurd lengths are not followed.
        if not 1 <= length_bytes <= 4 or start + length_bytes > len(data):
            return None
        length = int.from_bytes(data[start : start + length_bytes], "big")
        start += length_bytes
    if start + length > len(data):
        return None
    return tag, start, start + length


def _der_children(
    data: bytes, parent: tuple[int, int, int], *, limit: int
) -> list[tuple[int, int, int]]:
    """Up to ``limit`` values inside the constructed value ``parent``."""
    children: list[tuple[int, int, int]] = []
    offset = parent[1]
    while offset < parent[2] and len(children) < limit:
        child = _der_value(data, offset)
        if child is None or child[2] > parent[2]:
            break
        children.append(child)
        offset = child[2]
    return children


def _der_all_children(data: bytes, parent: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """Every value inside ``parent``; empty when one of them is malformed or overruns it."""
    children: list[tuple[int, int, int]] = []
    offset = parent[1]
    while offset < parent[2]:
        child = _der_value(data, offset)
        if child is None or child[2] > parent[2]:
            return []
        children.append(child)
        offset = child[2]
    return children


def _der_whole(data: bytes) -> tuple[int, int, int] | None:
    """The one value ``data`` holds, None when it holds anything else (or more)."""
    value = _der_value(data, 0)
    return value if value is not None and value[2] == len(data) else None


def _der_integer(data: bytes, value: tuple[int, int, int]) -> int:
    """The DER INTEGER ``value``, saturated so that a thousand-digit count stays cheap."""
    content = data[value[1] : value[2]]
    if len(content) > 8:
        return 2**64
    return int.from_bytes(content, "big", signed=True)


def _der_content(data: bytes, value: tuple[int, int, int]) -> bytes:
    """The content bytes of ``value``."""
    return data[value[1] : value[2]]


def _integer_bits(data: bytes, value: tuple[int, int, int]) -> int:
    """The size in bits of a non-negative DER INTEGER, however long."""
    content = data[value[1] : value[2]].lstrip(b"\x00")
    return (len(content) - 1) * 8 + content[0].bit_length() if content else 0


def _key_shape(data: bytes) -> _KeyShape | None:
    """The kind of private key ``data`` (DER) is, None when it has no private-key structure.

    The structures: PKCS#8 PrivateKeyInfo and EncryptedPrivateKeyInfo (RFC 5208),
    RSAPrivateKey (RFC 8017, A.1.2), ECPrivateKey (RFC 5915) and OpenSSL's DSA form
    (version and five integers).
    """
    whole = _der_whole(data)
    if whole is None or whole[0] != _SEQUENCE:
        return None
    parts = _der_all_children(data, whole)
    tags = [part[0] for part in parts]
    if len(parts) == 2 and tags == [_SEQUENCE, _OCTET_STRING]:
        return _KeyShape(KEY_ENCRYPTED_PKCS8, encryption=parts[0], encrypted=parts[1])
    if len(parts) >= 3 and tags[:3] == [_INTEGER, _SEQUENCE, _OCTET_STRING]:
        return _pkcs8_shape(data, parts)
    if len(parts) >= 2 and tags[:2] == [_INTEGER, _OCTET_STRING]:
        return _KeyShape(KEY_EC, algorithm=KEY_EC)
    if len(parts) in (9, 10) and all(tag == _INTEGER for tag in tags[:9]):
        return _KeyShape(KEY_RSA, algorithm=KEY_RSA, rsa_bits=_integer_bits(data, parts[1]))
    if len(parts) == 6 and all(tag == _INTEGER for tag in tags):
        return _KeyShape(KEY_DSA, algorithm=KEY_DSA)
    return None


def _pkcs8_shape(data: bytes, parts: list[tuple[int, int, int]]) -> _KeyShape:
    """The algorithm a PrivateKeyInfo names, with the size of an RSA key."""
    algorithm = _der_children(data, parts[1], limit=1)
    oid = _der_content(data, algorithm[0]) if algorithm and algorithm[0][0] == _OID else b""
    if oid in _RSA_OIDS:
        inner = _key_shape(_der_content(data, parts[2]))
        bits = inner.rsa_bits if inner is not None and inner.kind == KEY_RSA else 0
        return _KeyShape(KEY_PKCS8, algorithm=KEY_RSA, rsa_bits=bits)
    names = {_EC_OID: KEY_EC, _DSA_OID: KEY_DSA}
    names.update(dict.fromkeys(_DH_OIDS, ALGORITHM_DH))
    names.update(dict.fromkeys(_X25519_X448_OIDS, ALGORITHM_KEY_AGREEMENT))
    names.update(dict.fromkeys(_EDDSA_OIDS, ALGORITHM_EDDSA))
    return _KeyShape(KEY_PKCS8, algorithm=names.get(oid, ALGORITHM_OTHER))


def _tbs_spki(data: bytes) -> tuple[int, int, int] | None:
    """The SubjectPublicKeyInfo of the DER TBSCertificate ``data`` (RFC 5280, 4.1)."""
    tbs = _der_value(data, 0)
    # [0] version (optional), serial, signature, issuer, validity, subject, SPKI
    parts = _der_children(data, tbs, limit=7) if tbs else []
    spki_index = 6 if parts and parts[0][0] == 0xA0 else 5
    return parts[spki_index] if len(parts) > spki_index else None


@dataclass(frozen=True)
class _PublicKeySize:
    """What verifying with a certificate's key costs depends on: its algorithm ("rsa", "dsa",
    "" for others), the size of its modulus (RSA n, DSA p) and of the RSA public exponent."""

    algorithm: str = ""
    modulus_bits: int = 0
    exponent_bits: int = 0


def _spki_size(data: bytes, spki: tuple[int, int, int]) -> _PublicKeySize:
    """The sizes of the RSA or DSA key of the SubjectPublicKeyInfo ``spki`` (RFC 5280, 4.1)."""
    parts = _der_children(data, spki, limit=2)
    if len(parts) != 2 or parts[0][0] != _SEQUENCE or parts[1][0] != _BIT_STRING:
        return _PublicKeySize()
    algorithm = _der_children(data, parts[0], limit=2)
    oid = _der_content(data, algorithm[0]) if algorithm and algorithm[0][0] == _OID else b""
    if oid == _DSA_OID and len(algorithm) == 2 and algorithm[1][0] == _SEQUENCE:
        # Dss-Parms { p, q, g } (RFC 3279, 2.3.2)
        numbers = _der_children(data, algorithm[1], limit=1)
        if numbers and numbers[0][0] == _INTEGER:
            return _PublicKeySize(KEY_DSA, _integer_bits(data, numbers[0]))
    if oid not in _RSA_OIDS:
        return _PublicKeySize()
    # The BIT STRING starts with its count of unused bits, then RSAPublicKey { n, e }.
    key = _der_value(data, parts[1][1] + 1)
    numbers = _der_children(data, key, limit=2) if key and key[0] == _SEQUENCE else []
    if len(numbers) != 2 or numbers[0][0] != _INTEGER or numbers[1][0] != _INTEGER:
        return _PublicKeySize()
    return _PublicKeySize(KEY_RSA, _integer_bits(data, numbers[0]), _integer_bits(data, numbers[1]))


def private_key_structure_found(data: bytes) -> bool:
    """True when the DER ``data`` has the structure of a private key, encrypted or not."""
    return _key_shape(data) is not None
