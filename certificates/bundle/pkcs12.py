"""PKCS#12 (.p12/.pfx) files given as the certificate: recognising one, refusing one whose key
derivation or key bag would be too costly before it is opened, opening it with the passphrase
(or with no password, which some tools write differently), checking its certificates like any
other, and telling a wrong password from a damaged file.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs12

from .der import _kdf_iterations, _pkcs12_key_bag_size, _pkcs12_mac_iterations
from .keys import _key_accept
from .messages import (
    FIELD_CERTIFICATE,
    FIELD_PASSPHRASE,
    KDF_TOO_EXPENSIVE_MESSAGE,
    MAX_KDF_ITERATIONS,
    MAX_PKCS12_KEY_BAG_BYTES,
    PKCS12_CERTIFICATE_DAMAGED_MESSAGE,
    PKCS12_DAMAGED_MESSAGE,
    PKCS12_KEY_TOO_LARGE_MESSAGE,
    PKCS12_PASSWORD_MISSING_MESSAGE,
    PKCS12_PASSWORD_WRONG_MESSAGE,
)
from .pem import _CERTIFICATE_ERRORS, _certificate_parts_check
from .results import BundleResult, _FieldContent


def _looks_like_pkcs12(data: bytes) -> bool:
    """True for a DER SEQUENCE whose first element is INTEGER 3 (the PFX version)."""
    if len(data) < 5 or data[0] != 0x30:
        return False
    length_byte = data[1]
    offset = 2 + (length_byte & 0x7F if length_byte & 0x80 else 0)
    return data[offset : offset + 3] == b"\x02\x01\x03"


def _pkcs12_read(
    result: BundleResult, *, content: _FieldContent, data: bytes, secret: bytes | None
) -> None:
    """Add the key and certificates of a PKCS#12 file, opened with ``secret``."""
    content.is_pkcs12 = True
    iterations = max(_kdf_iterations(data), _pkcs12_mac_iterations(data))
    if iterations > MAX_KDF_ITERATIONS:
        content.problems = True
        result.error_add(FIELD_CERTIFICATE, KDF_TOO_EXPENSIVE_MESSAGE.format(iterations=iterations))
        return
    if _pkcs12_key_bag_size(data) > MAX_PKCS12_KEY_BAG_BYTES:
        content.problems = True
        result.error_add(FIELD_CERTIFICATE, PKCS12_KEY_TOO_LARGE_MESSAGE)
        return
    # An empty password is encoded differently from no password by some
    # tools, and a password typed for a file that has none is harmless.
    passwords = [secret, None, b""] if secret else [None, b""]
    failure: Exception | None = None
    for password in passwords:
        try:
            key, certificate, additional = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            failure = error
            continue
        certificates = [certificate, *additional] if certificate else additional
        try:
            for each in certificates:
                _certificate_parts_check(each)
        except _CERTIFICATE_ERRORS:
            content.problems = True
            result.error_add(FIELD_CERTIFICATE, PKCS12_CERTIFICATE_DAMAGED_MESSAGE)
            return
        if key is not None:
            _key_accept(result, content=content, key=key)
        content.certificates.extend(certificates)
        return
    content.problems = True
    # cryptography says "Invalid password or PKCS12 data" for a wrong password
    # and "Could not deserialize PKCS12 data" for a damaged file.
    if "password" not in str(failure).lower():
        result.error_add(FIELD_CERTIFICATE, PKCS12_DAMAGED_MESSAGE)
    elif secret:
        result.error_add(FIELD_PASSPHRASE, PKCS12_PASSWORD_WRONG_MESSAGE)
    else:
        result.error_add(FIELD_PASSPHRASE, PKCS12_PASSWORD_MISSING_MESSAGE)
