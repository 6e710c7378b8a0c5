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
# Proving an RSA key (one signature) costs about 0.2 s of CPU at 8192 bits and 1.4 s at 16384;
# larger keys are refused from the size their DER declares, before anything is computed.
MAX_RSA_BITS = 8192
# Verifying with a certificate's key: OpenSSL takes any RSA exponent for moduli up to 3072 bits
# (a 3072-bit exponent: 9 ms per signature, measured) and DSA primes up to 10,000 bits (17 ms),
# and building a chain may verify with each of 150 certificates. Publicly trusted certificates
# use exponents up to 2^256 - 1 (CA/Browser Forum Baseline Requirements, section 6.1.6,
# https://cabforum.org/baseline-requirements/) and DSA primes up to 3072 bits (FIPS 186-4).
MAX_RSA_EXPONENT_BITS = 256
MAX_DSA_BITS = 3072
# Password-based key derivation costs what the file declares, so it is priced before it runs,
# in rounds: one round is one PBKDF2-HMAC-SHA-256 iteration producing one 32-byte block, about
# 0.14 µs of CPU on a 2-core machine (measured). OpenSSL writes 2048 iterations, careful tools a
# few hundred thousand; one derivation may cost MAX_KDF_ROUNDS (about 0.15 s), all those of one
# upload together MAX_UPLOAD_KDF_ROUNDS (about 0.3 s), whatever the number of encrypted keys and
# files.
MAX_KDF_ROUNDS = 1_000_000
MAX_UPLOAD_KDF_ROUNDS = 2_000_000
# scrypt (RFC 7914) costs about 2·r·p·(N + 4) rounds and 128·N·r bytes of memory. OpenSSL's
# default (N=16384, r=8, p=1: 16 MiB, 0.04 s measured) is the most accepted: N·r·p at most
# SCRYPT_MAX_WORK, 128·N·r at most SCRYPT_MAX_MEMORY, and r·p (the lanes, each with a fixed
# overhead) at most SCRYPT_MAX_LANES, so one derivation stays under 0.05 s.
SCRYPT_MAX_WORK = 2**17
SCRYPT_MAX_MEMORY = 16 * 1024 * 1024
SCRYPT_MAX_LANES = 1024
# PKCS#12 files may nest bags this deep (safeContentsBag, RFC 7292 section 4.2.6).
MAX_PKCS12_NESTING = 4

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
PKCS12_UNSUPPORTED_MESSAGE = (
    "The PKCS#12 file uses {what}, which certmgr does not read; export it again with standard "
    "settings, or upload the certificate and the key as PEM files."
)
KDF_TOO_EXPENSIVE_MESSAGE = (
    "The file's password protection asks for {what}: more key-derivation work than certmgr "
    "does for one file. Export it again with standard settings."
)
UPLOAD_KDF_BUDGET_MESSAGE = (
    "Together, the password-protected keys and files of this upload ask for more "
    "key-derivation work than one upload may cause. Upload only the certificate's own key, or "
    "export the files again with standard settings."
)
PROTECTION_UNSUPPORTED_MESSAGE = (
    "The file's password protection uses {what}, which certmgr does not read; export it again "
    "with standard settings (PBKDF2 or scrypt with AES)."
)
RSA_TOO_LARGE_MESSAGE = "The RSA key has {bits:,} bits; more than {limit:,} is not supported."
CERTIFICATE_RSA_TOO_LARGE_MESSAGE = (
    "The certificate's RSA key has {bits:,} bits; more than {limit:,} is not supported."
)
CERTIFICATE_RSA_EXPONENT_MESSAGE = (
    "The certificate's RSA public exponent has {bits:,} bits; more than {limit} is not supported."
)
CERTIFICATE_DSA_TOO_LARGE_MESSAGE = (
    "The certificate's DSA key has {bits:,} bits; more than {limit:,} is not supported."
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
