"""The limits that keep hostile files cheap, the names of the upload fields, and every message an
operator may read. The limits bound the work one upload can cause; the field names key
``BundleResult.errors`` so that a form shows each message next to the field it concerns; the
messages are plain words, kept in one place so that forms and tests compare against the same
text.
"""

MAX_FILE_BYTES = 64 * 1024
MAX_PEM_BLOCKS = 100
MAX_CERTIFICATES = 50
# A hostile file could otherwise produce a page of near-identical messages.
MAX_FIELD_MESSAGES = 5
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384
# Password-based key derivation costs what the file says; OpenSSL writes 2048
# rounds and careful tools a few hundred thousand.
MAX_KDF_ITERATIONS = 1_000_000
# PKCS#12 files give no way to skip the slow RSA key validation of
# cryptography (seconds for 8192 bits); an encrypted key bag of this size
# holds an RSA key of about 4096 bits.
MAX_PKCS12_KEY_BAG_BYTES = 3000

FIELD_CERTIFICATE = "certificate"
FIELD_PRIVATE_KEY = "private_key"
FIELD_CHAIN = "chain"
FIELD_PASSPHRASE = "passphrase"
FIELDS = (FIELD_CERTIFICATE, FIELD_PRIVATE_KEY, FIELD_CHAIN, FIELD_PASSPHRASE)

KIND_SSL = "ssl"

UNREADABLE_MESSAGE = "The file could not be read as a certificate (PEM, DER or PKCS#12)."
TOO_LARGE_MESSAGE = "The file is larger than 64 KiB; a certificate file is a few KiB."
NOT_A_KEY_MESSAGE = "The file is not a private key we can read (PEM or DER)."
NO_CHAIN_CERTIFICATE_MESSAGE = "The chain file holds no certificate we can read."
UNEXPECTED_FAILURE_MESSAGE = (
    "The files could not be checked because of an unexpected problem with their content."
)
KEY_MISMATCH_MESSAGE = "The private key does not belong to this certificate."
TWO_KEYS_MESSAGE = "The files hold two different private keys; upload only this certificate's key."
KEY_PASSPHRASE_MISSING_MESSAGE = "The private key is encrypted: enter its passphrase."
KEY_PASSPHRASE_WRONG_MESSAGE = "The passphrase does not open the private key."
PKCS12_PASSWORD_MISSING_MESSAGE = "This is a PKCS#12 file: enter its password."
PKCS12_PASSWORD_WRONG_MESSAGE = "The password of the PKCS#12 file is wrong."
PKCS12_DAMAGED_MESSAGE = "The PKCS#12 file is damaged and could not be read."
PKCS12_NO_CERTIFICATE_MESSAGE = (
    "The PKCS#12 file holds no certificate: export it again with the certificate included."
)
PKCS12_CERTIFICATE_DAMAGED_MESSAGE = (
    "The PKCS#12 file holds a certificate whose content is malformed and cannot be read."
)
PKCS12_KEY_TOO_LARGE_MESSAGE = (
    "The PKCS#12 file holds a very large key (over 4096 bits); "
    "upload the certificate and the key as PEM files instead."
)
KDF_TOO_EXPENSIVE_MESSAGE = (
    "The file's password protection asks for {iterations:,} rounds of key derivation; "
    "export it again with standard settings."
)
KEY_INCONSISTENT_MESSAGE = "The private key is damaged: its parts do not fit together."
KEY_UNSUPPORTED_MESSAGE = (
    "The private key uses an algorithm or curve certmgr cannot read "
    "(custom EC curve parameters, for example)."
)
EXPLICIT_CURVE_MESSAGE = (
    "The certificate's EC key spells out its curve parameters instead of naming the curve; "
    "browsers reject such certificates. Have it issued for a key saved with a named curve "
    "(openssl ec -param_enc named_curve)."
)
KEY_UNUSABLE_TYPE_MESSAGE = "The private key is of a type certificates do not use."
KEY_NOT_CERTIFICATE_MESSAGE = (
    "This file holds a private key but no certificate we can read: put the key in "
    "Certificate key and the certificate here."
)
CSR_MESSAGE = (
    "This is a certificate signing request (CSR), not a certificate: "
    "upload the certificate your certificate authority issued for it."
)
NO_KEY_WARNING = "No private key: the certificate can be tracked but not deployed."
REORDERED_WARNING = "The chain was given out of order and has been re-ordered."
NO_INTERMEDIATES_WARNING = (
    "No intermediate certificates were given: browsers may fail to trust the certificate "
    "without them."
)
SELF_SIGNED_WARNING = "The certificate is self-signed: browsers will not trust it."
