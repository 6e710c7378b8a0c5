"""Read and check what an operator uploads for a certificate.

Contract:

* Pure package: no Django imports.  ``certificate_bundle_parse`` takes the raw
  bytes of the three upload fields (certificate, private key, chain) plus the
  passphrase, and returns a ``BundleResult``; it never raises, whatever the
  bytes.  Problems are plain-words messages keyed by the form field they
  belong to (``messages.FIELDS``), so the form can show them next to that field.
* Accepted forms:
    - certificate field: PEM certificate(s), a DER certificate, a combined
      PEM (key, leaf and intermediates in any order), PKCS#7 (PEM or DER), or
      PKCS#12 (.p12/.pfx) opened with the passphrase;
    - private key field: PKCS#1, PKCS#8, SEC1, encrypted PKCS#8 and legacy
      encrypted PEM, or DER; opened with the passphrase when encrypted;
    - chain field: PEM certificates (text between blocks is ignored), a single
      DER certificate, or PKCS#7.
* The leaf is the certificate matching the private key, else the first
  certificate of the certificate field that issues none of the others.  The
  intermediates are ordered from the leaf towards the root by name and
  signature; a self-signed root is dropped, stray certificates are refused.
* For ``kind == "ssl"`` an expired or not-yet-valid leaf, an RSA key under
  2048 bits, an EC key with explicit curve parameters and SHA-1/MD5
  signatures are refused; for other kinds they are
  only warnings.  A key that does not match and a broken chain are refused
  for every kind.
* When the result is ``ok``, either ``leaf`` is set or ``unreadable`` is True
  (a PKCS#12 file holding only a key is refused).
* A certificate is read whole when loaded (names, extensions, signature
  parameters, which cryptography parses lazily): one with a malformed part is
  a damaged block or an unreadable file, reported on the field it came in.
* ``BundleResult.unreadable`` is True when the certificate field held nothing
  readable as a certificate and was not a PKCS#12 file; the certificate
  field's errors then only say why (``UNREADABLE_MESSAGE``, damaged blocks, a
  CSR instead of a certificate), so a form may accept the upload with an
  expiry date typed by hand.  The key and chain are still read and checked.
* Every upload does bounded work, whatever its content (the limits are in ``messages``):
  ``MAX_FILE_BYTES`` per field, ``MAX_PEM_BLOCKS`` blocks and ``MAX_CERTIFICATES``
  certificates per field, at most ``MAX_FIELD_MESSAGES`` similar messages per field.
  Key derivations (encrypted PKCS#8 keys, legacy encrypted PEM keys, PKCS#12 integrity checks,
  encrypted contents and key bags) are read from their parameters and priced before they run:
  one may cost ``MAX_KDF_ROUNDS``, all those of one upload together ``MAX_UPLOAD_KDF_ROUNDS``,
  scrypt is held to ``SCRYPT_MAX_WORK``, ``SCRYPT_MAX_MEMORY`` and ``SCRYPT_MAX_LANES``, and an
  unknown key derivation or cipher is refused before anything is decrypted. Encrypted keys and
  PKCS#12 files are decrypted by this package, so that what they hide is priced and inspected
  too. Keys are inspected from their DER before they are loaded: DSA, DH, X25519 and X448 keys
  and RSA keys over ``MAX_RSA_BITS`` are refused unloaded (certificates with such an RSA key
  too), RSA validation is skipped and only the key the upload keeps is proven, by one
  signature. Whether a certificate file holds a key is told from its structure, never by
  loading it.
* The returned private key is unencrypted PKCS#8 PEM; it is kept out of the
  result's ``repr`` so it does not end up in logs.

The modules, each importing only those listed before it: ``messages``, ``results``, ``der``,
``ciphers``, ``pem``, ``pbe``, ``keys``, ``pkcs12``, ``fields``, ``facts``, ``chain``,
``policy``, ``check``. This file re-exports the names the rest of the project imports.
"""

from .check import certificate_bundle_parse, private_key_load
from .der import private_key_structure_found
from .facts import certificate_facts, certificate_pem_facts
from .keys import private_key_pem
from .messages import (
    CERTIFICATE_RSA_TOO_LARGE_MESSAGE,
    EXPLICIT_CURVE_MESSAGE,
    FIELD_CERTIFICATE,
    FIELD_CHAIN,
    FIELD_PASSPHRASE,
    FIELD_PRIVATE_KEY,
    KEY_INCONSISTENT_MESSAGE,
    KEY_MISMATCH_MESSAGE,
    KEY_NOT_CERTIFICATE_MESSAGE,
    KEY_PASSPHRASE_MISSING_MESSAGE,
    KEY_PASSPHRASE_WRONG_MESSAGE,
    KEY_UNSUPPORTED_MESSAGE,
    KEY_UNUSABLE_TYPE_MESSAGE,
    MAX_FILE_BYTES,
    MAX_RSA_BITS,
    NO_CHAIN_CERTIFICATE_MESSAGE,
    NO_INTERMEDIATES_WARNING,
    NO_KEY_WARNING,
    NOT_A_KEY_MESSAGE,
    PKCS12_NO_CERTIFICATE_MESSAGE,
    PKCS12_PASSWORD_MISSING_MESSAGE,
    PKCS12_PASSWORD_WRONG_MESSAGE,
    REORDERED_WARNING,
    RSA_TOO_LARGE_MESSAGE,
    TOO_LARGE_MESSAGE,
    TWO_KEYS_MESSAGE,
    UNEXPECTED_FAILURE_MESSAGE,
    UNREADABLE_MESSAGE,
    UPLOAD_KDF_BUDGET_MESSAGE,
)
from .results import BundleError, BundleResult

__all__ = [
    "CERTIFICATE_RSA_TOO_LARGE_MESSAGE",
    "EXPLICIT_CURVE_MESSAGE",
    "FIELD_CERTIFICATE",
    "FIELD_CHAIN",
    "FIELD_PASSPHRASE",
    "FIELD_PRIVATE_KEY",
    "KEY_INCONSISTENT_MESSAGE",
    "KEY_MISMATCH_MESSAGE",
    "KEY_NOT_CERTIFICATE_MESSAGE",
    "KEY_PASSPHRASE_MISSING_MESSAGE",
    "KEY_PASSPHRASE_WRONG_MESSAGE",
    "KEY_UNSUPPORTED_MESSAGE",
    "KEY_UNUSABLE_TYPE_MESSAGE",
    "MAX_FILE_BYTES",
    "MAX_RSA_BITS",
    "NO_CHAIN_CERTIFICATE_MESSAGE",
    "NO_INTERMEDIATES_WARNING",
    "NO_KEY_WARNING",
    "NOT_A_KEY_MESSAGE",
    "PKCS12_NO_CERTIFICATE_MESSAGE",
    "PKCS12_PASSWORD_MISSING_MESSAGE",
    "PKCS12_PASSWORD_WRONG_MESSAGE",
    "REORDERED_WARNING",
    "RSA_TOO_LARGE_MESSAGE",
    "TOO_LARGE_MESSAGE",
    "TWO_KEYS_MESSAGE",
    "UNEXPECTED_FAILURE_MESSAGE",
    "UNREADABLE_MESSAGE",
    "UPLOAD_KDF_BUDGET_MESSAGE",
    "BundleError",
    "BundleResult",
    "certificate_bundle_parse",
    "certificate_facts",
    "certificate_pem_facts",
    "private_key_load",
    "private_key_pem",
    "private_key_structure_found",
]
