"""Files that cost their reader what their uploader chose, built at run time from DER by hand.

Each one is small and cheap to make here: nothing is derived with the declared parameters and
no large key is generated (the RSA, DSA and DH numbers are random, of the declared size, with
no small factor). They declare expensive work: scrypt with large N, r or p, PBKDF2 with many
iterations, a PKCS#12 integrity check with a huge iteration count, keys hidden in encrypted
PKCS#12 content, RSA keys larger than supported, DSA and DH keys whose loading computes a
modular exponentiation of the declared size. The structures are those of RFC 5208 (PKCS#8),
RFC 8018 (PBES2, PBKDF2), RFC 7914 (scrypt), RFC 7292 (PKCS#12) and RFC 8017 (RSA keys).
"""

import base64
import datetime
import math
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
SCRYPT = "1.3.6.1.4.1.11591.4.11"
HMAC_SHA256 = "1.2.840.113549.2.9"
AES256_CBC = "2.16.840.1.101.3.4.1.42"
RSA = "1.2.840.113549.1.1.1"
DSA = "1.2.840.10040.4.1"
DH = "1.2.840.113549.1.3.1"
DATA = "1.2.840.113549.1.7.1"
ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
KEY_BAG = "1.2.840.113549.1.12.10.1.1"
SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
CERT_BAG = "1.2.840.113549.1.12.10.1.3"
X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
# The primes below 2^12: a number without any of them as a factor passes trial division.
SMALL_PRIMES_PRODUCT = math.prod(
    n for n in range(3, 4096, 2) if all(n % d for d in range(3, int(n**0.5) + 1, 2))
)


# --------------------------------------------------------------------------- DER


def tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def sequence(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def octets(value: bytes) -> bytes:
    return tlv(0x04, value)


def explicit(value: bytes) -> bytes:
    return tlv(0xA0, value)


def oid(dotted: str) -> bytes:
    numbers = [int(part) for part in dotted.split(".")]
    body = bytes([40 * numbers[0] + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        while number := number >> 7:
            chunk.append(0x80 | (number & 0x7F))
        body += bytes(reversed(chunk))
    return tlv(0x06, body)


def pem(label: str, der: bytes) -> bytes:
    lines = [base64.b64encode(der[i : i + 48]) for i in range(0, len(der), 48)]
    begin, end = f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()
    return b"\n".join([begin, *lines, end, b""])


def children(data: bytes) -> list[bytes]:
    """The encoded values inside the DER SEQUENCE ``data`` (definite lengths only)."""
    values, offset = [], _content_start(data, 0)
    while offset < len(data):
        start = _content_start(data, offset)
        end = start + _length(data, offset)
        values.append(data[offset:end])
        offset = end
    return values


def _length(data: bytes, offset: int) -> int:
    first = data[offset + 1]
    if first < 0x80:
        return first
    return int.from_bytes(data[offset + 2 : offset + 2 + (first & 0x7F)], "big")


def _content_start(data: bytes, offset: int) -> int:
    first = data[offset + 1]
    return offset + 2 + (first & 0x7F if first & 0x80 else 0)


# --------------------------------------------------------------------------- big numbers


def odd_without_small_factors(bits: int, generator: random.Random) -> int:
    """A random odd number of ``bits`` bits (the top two set, so that a product of two has all
    its bits) that trial division cannot reject."""
    while True:
        candidate = generator.getrandbits(bits) | (3 << (bits - 2)) | 1
        if math.gcd(candidate, SMALL_PRIMES_PRODUCT) == 1:
            return candidate


def rsa_private_key(bits: int, generator: random.Random) -> bytes:
    """RSAPrivateKey with a ``bits``-bit modulus of two composite factors (PKCS#1 DER).

    Its parts fit as far as arithmetic without factoring allows, so that a validating loader
    gets past the cheap checks to the primality tests of the factors.
    """
    p = odd_without_small_factors(bits // 2, generator)
    q = odd_without_small_factors(bits - bits // 2, generator)
    e = 65537
    lcm = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    d = pow(e, -1, lcm) if math.gcd(e, lcm) == 1 else odd_without_small_factors(bits - 1, generator)
    return sequence(
        integer(0),
        integer(p * q),
        integer(e),
        integer(d),
        integer(p),
        integer(q),
        integer(d % (p - 1)),
        integer(d % (q - 1)),
        integer(pow(q, -1, p)),
    )


def rsa_pkcs8(bits: int, generator: random.Random) -> bytes:
    return sequence(
        integer(0), sequence(oid(RSA), tlv(0x05, b"")), octets(rsa_private_key(bits, generator))
    )


def dsa_pkcs8(bits: int, generator: random.Random) -> bytes:
    """A DSA PrivateKeyInfo with a ``bits``-bit p and private value: loading it computes
    g^x mod p."""
    p = odd_without_small_factors(bits, generator)
    q = odd_without_small_factors(256, generator)
    g = generator.getrandbits(bits - 1) | 2
    x = generator.getrandbits(bits - 1) | 1
    parameters = sequence(integer(p), integer(q), integer(g))
    return sequence(integer(0), sequence(oid(DSA), parameters), octets(integer(x)))


def dh_pkcs8(bits: int, generator: random.Random) -> bytes:
    """A DH PrivateKeyInfo (PKCS#3 parameters) with a ``bits``-bit prime."""
    p = odd_without_small_factors(bits, generator)
    x = generator.getrandbits(bits - 1) | 1
    return sequence(
        integer(0), sequence(oid(DH), sequence(integer(p), integer(2))), octets(integer(x))
    )


def rsa_public_key_huge_exponent(bits: int, generator: random.Random):
    """An RSA public key with a ``bits``-bit modulus and an exponent almost as long."""
    modulus = odd_without_small_factors(bits, generator)
    exponent = generator.getrandbits(bits - 1) | 1
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def dsa_public_key(bits: int, generator: random.Random):
    """A DSA public key with a ``bits``-bit prime, read from its SubjectPublicKeyInfo."""
    p = odd_without_small_factors(bits, generator)
    q = odd_without_small_factors(256, generator)
    parameters = sequence(integer(p), integer(q), integer(generator.getrandbits(bits - 2) | 2))
    public = integer(generator.getrandbits(bits - 2) | 3)
    spki = sequence(sequence(oid(DSA), parameters), tlv(0x03, b"\x00" + public))
    return serialization.load_der_public_key(spki)


def certificate(subject: str, issuer: str, public_key, signer, serial: int = 1) -> bytes:
    """A PEM certificate for ``public_key`` named ``subject``, signed by ``signer`` as
    ``issuer`` (SHA-256), valid now."""
    now = datetime.datetime.now(datetime.UTC)
    built = x509.CertificateBuilder(
        issuer_name=x509.Name.from_rfc4514_string(issuer),
        subject_name=x509.Name.from_rfc4514_string(subject),
        public_key=public_key,
        serial_number=serial,
        not_valid_before=now - datetime.timedelta(days=1),
        not_valid_after=now + datetime.timedelta(days=30),
    ).sign(signer, hashes.SHA256())
    return built.public_bytes(serialization.Encoding.PEM)


def impostors(issuer: str, count: int, public_key, signer, *, first_serial: int = 1) -> bytes:
    """``count`` certificates (PEM) each named ``issuer`` and holding ``public_key``: each is
    a candidate issuer that building a chain verifies a signature with."""
    return b"".join(
        certificate(issuer, issuer, public_key, signer, serial)
        for serial in range(first_serial, first_serial + count)
    )


# --------------------------------------------------------------- password-based encryption


def pbkdf2_algorithm(salt: bytes, iterations: int, iv: bytes) -> bytes:
    """PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC."""
    kdf = sequence(
        oid(PBKDF2),
        sequence(octets(salt), integer(iterations), sequence(oid(HMAC_SHA256), tlv(0x05, b""))),
    )
    return sequence(oid(PBES2), sequence(kdf, sequence(oid(AES256_CBC), octets(iv))))


def scrypt_algorithm(salt: bytes, n: int, r: int, p: int, iv: bytes) -> bytes:
    """PBES2 with scrypt and AES-256-CBC."""
    kdf = sequence(oid(SCRYPT), sequence(octets(salt), integer(n), integer(r), integer(p)))
    return sequence(oid(PBES2), sequence(kdf, sequence(oid(AES256_CBC), octets(iv))))


def aes_encrypt(key: bytes, iv: bytes, plain: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def encrypted_private_key(algorithm: bytes, encrypted: bytes) -> bytes:
    return sequence(algorithm, octets(encrypted))


def scrypt_encrypted_key(
    plain: bytes, password: bytes, *, n: int, r: int, p: int, derive: bool
) -> bytes:
    """``plain`` (a PrivateKeyInfo) encrypted with scrypt; only affordable parameters are
    derived for real (``derive``), the others get random ciphertext of the right length."""
    salt, iv = b"s" * 16, b"i" * 16
    if derive:
        key = Scrypt(salt, 32, n, r, p).derive(password)
        encrypted = aes_encrypt(key, iv, plain)
    else:
        encrypted = random.Random(n * r * p).randbytes(len(plain) // 16 * 16 + 16)
    return encrypted_private_key(scrypt_algorithm(salt, n, r, p, iv), encrypted)


def pbkdf2_encrypted(
    plain: bytes, password: bytes, *, iterations: int, derive: bool
) -> tuple[bytes, bytes]:
    """(AlgorithmIdentifier, ciphertext) of ``plain`` under PBKDF2 with ``iterations``."""
    salt, iv = b"t" * 16, b"v" * 16
    if derive:
        key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(password)
        encrypted = aes_encrypt(key, iv, plain)
    else:
        encrypted = random.Random(iterations).randbytes(len(plain) // 16 * 16 + 16)
    return pbkdf2_algorithm(salt, iterations, iv), encrypted


# --------------------------------------------------------------------------- PKCS#12


def safe_bag(bag_id: str, value: bytes) -> bytes:
    return sequence(oid(bag_id), explicit(value))


def certificate_bag(certificate_der: bytes) -> bytes:
    return safe_bag(CERT_BAG, sequence(oid(X509_CERTIFICATE), explicit(octets(certificate_der))))


def data_content(*bags: bytes) -> bytes:
    """A ContentInfo of type data holding SafeContents with ``bags``."""
    return sequence(oid(DATA), explicit(octets(sequence(*bags))))


def encrypted_content(algorithm: bytes, encrypted: bytes) -> bytes:
    """A ContentInfo of type encryptedData (PKCS#7) with an already encrypted content."""
    info = sequence(oid(DATA), algorithm, tlv(0x80, encrypted))
    return sequence(oid(ENCRYPTED_DATA), explicit(sequence(integer(0), info)))


def encrypted_bags(*bags: bytes, password: bytes, iterations: int = 1) -> bytes:
    """An encryptedData content hiding ``bags``, encrypted for real with a cheap derivation."""
    algorithm, encrypted = pbkdf2_encrypted(
        sequence(*bags), password, iterations=iterations, derive=True
    )
    return encrypted_content(algorithm, encrypted)


def pfx(*contents: bytes, mac: bytes | None = None) -> bytes:
    """A PKCS#12 file (version 3) of ``contents``, with the MacData ``mac`` if given."""
    authenticated_safe = sequence(*contents)
    parts = [integer(3), sequence(oid(DATA), explicit(octets(authenticated_safe)))]
    return sequence(*parts, *([mac] if mac else []))


def with_mac_iterations(p12: bytes, iterations: int) -> bytes:
    """``p12`` (written by cryptography) with its integrity check's iteration count replaced."""
    version, authenticated_safe, mac = children(p12)
    digest, salt = children(mac)[:2]
    return sequence(version, authenticated_safe, sequence(digest, salt, integer(iterations)))


def der_of(key) -> bytes:
    """An unencrypted PKCS#8 DER of a cryptography key."""
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
