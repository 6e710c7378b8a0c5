"""A tiny DER walker and the password-protection parameters it reads before anything is decrypted.
Password-based key derivation costs whatever the file declares, so the iteration counts of
PKCS#5 and PKCS#12 encryption, the PKCS#12 integrity check and the size of PKCS#12 key bags are
read from the raw bytes first. Only definite lengths of at most four bytes are followed, and
nothing here raises: a malformed value ends the walk.
"""

from __future__ import annotations

import re

# DER prefixes of the OIDs of PKCS#5 (1.2.840.113549.1.5.x, including PBKDF2)
# and PKCS#12 (1.2.840.113549.1.12.1.x) password-based encryption.
_PBE_OID_PREFIX = re.compile(
    re.escape(bytes.fromhex("06092a864886f70d0105"))
    + b"|"
    + re.escape(bytes.fromhex("060a2a864886f70d010c01"))
)
# DER prefix of the OIDs of the PKCS#12 keyBag and pkcs8ShroudedKeyBag.
_PKCS12_KEY_BAG_OID = re.compile(
    re.escape(bytes.fromhex("060b2a864886f70d010c0a01")) + b"[\x01\x02]"
)


def _kdf_iterations(data: bytes) -> int:
    """The largest iteration count of the password-based encryptions declared in ``data``."""
    largest = 0
    for match in _PBE_OID_PREFIX.finditer(data):
        oid = _der_value(data, match.start())
        parameters = _der_value(data, oid[2]) if oid else None
        if not parameters or parameters[0] != 0x30:
            continue
        # PBEParameter and PBKDF2-params both read { salt, iterationCount, ... }.
        salt_and_count = _der_children(data, parameters, limit=2)
        if len(salt_and_count) == 2 and salt_and_count[1][0] == 0x02:
            largest = max(largest, _der_integer(data, salt_and_count[1]))
    return largest


def _pkcs12_mac_iterations(data: bytes) -> int:
    """The iteration count of the PKCS#12 integrity check (1 when absent)."""
    # PFX ::= SEQUENCE { version, authSafe, macData SEQUENCE { mac, macSalt, iterations } }
    pfx = _der_value(data, 0)
    pfx_parts = _der_children(data, pfx, limit=3) if pfx else []
    mac_parts = _der_children(data, pfx_parts[2], limit=3) if len(pfx_parts) == 3 else []
    if len(mac_parts) == 3 and mac_parts[2][0] == 0x02:
        return _der_integer(data, mac_parts[2])
    return 1


def _pkcs12_key_bag_size(data: bytes) -> int:
    """The size of the largest key bag whose OID is readable in a PKCS#12 file."""
    largest = 0
    for match in _PKCS12_KEY_BAG_OID.finditer(data):
        oid = _der_value(data, match.start())
        value = _der_value(data, oid[2]) if oid else None
        if value:
            largest = max(largest, value[2] - value[1])
    return largest


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


def _der_integer(data: bytes, value: tuple[int, int, int]) -> int:
    """The DER INTEGER ``value``, saturated so that a thousand-digit count stays cheap."""
    content = data[value[1] : value[2]]
    if len(content) > 8:
        return 2**64
    return int.from_bytes(content, "big", signed=True)
