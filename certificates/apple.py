"""Apple Pay's files: merchant identifiers, key requirements, the CSR Apple asks for, and the
domain-association file ("identity proof").

Contract:

* Pure module: no Django imports; kinds are the plain strings of Certificate.Kind.
* ``merchant_identifier_problem(value)`` says why a merchant identifier is not in Apple's
  format (``merchant.`` followed by reverse-DNS labels of letters, digits and hyphens, e.g.
  ``merchant.com.example.shop``), "" when it is.
* ``KEY_REQUIREMENTS``: Apple issues a merchant identity certificate for an RSA 2048-bit key
  and a payment processing certificate for an EC P-256 key, nothing else;
  ``key_requirement_problem(kind, key_description)`` says why a certificate's key is not the
  one its kind needs ("" when it is, or for other kinds).
* ``request_key_generate(kind)`` makes a fresh key of the right type and
  ``csr_create(key=..., merchant_identifier=..., email=...)`` the PKCS#10 request (PEM, signed
  with SHA-256) that Apple's portal takes as a ``.certSigningRequest``. Its subject is what
  Keychain Access's Certificate Assistant writes, which Apple's instructions use: the common
  name (here the merchant identifier, so the file says what it is for) and the requester's
  e-mail address when there is one. Apple ignores the subject and issues its own.
* ``certificate_merchant_identifier(certificate)`` reads the merchant identifier Apple puts in
  the subject of the certificates it issues (the UID attribute, else a common name holding
  one), "" when none is named.
* ``issuer_not_apple_warning(kind, certificate)`` warns, naming the issuer, when a merchant
  identity or payment processing certificate was not issued by Apple (its issuer's
  organization is not "Apple Inc.", as Apple's Worldwide Developer Relations CAs name it:
  https://www.apple.com/certificateauthority/). Such a certificate is accepted (a test or a
  payment provider's setup may use one) but Apple Pay's servers would not take it.
* ``identity_proof_problem(data)`` refuses what must never be published as a
  domain-association file: a private key, a certificate, a CSR, a PKCS#12 file, nothing at all.
  The file itself is opaque (Apple's format changes); it is stored and served byte for byte.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .bundle import private_key_structure_found

KIND_MERCHANT_IDENTITY = "apple_merchant_identity"
KIND_PAYMENT_PROCESSING = "apple_payment_processing"
KIND_IDENTITY_PROOF = "apple_identity_proof"

WELL_KNOWN_PATH = "/.well-known/apple-developer-merchantid-domain-association"

MERCHANT_IDENTIFIER_MAX_LENGTH = 255
_MERCHANT_IDENTIFIER = re.compile(r"merchant(\.[A-Za-z0-9-]+)+")
# Where a merchant identifier may appear inside a subject attribute ("Merchant ID: merchant.x").
_MERCHANT_IDENTIFIER_IN_TEXT = re.compile(r"merchant(?:\.[A-Za-z0-9-]+)+")

# kind -> (key description as CertificateFacts.key_description gives it, words for messages)
KEY_REQUIREMENTS = {
    KIND_MERCHANT_IDENTITY: ("RSA 2048", "an RSA 2048-bit key"),
    KIND_PAYMENT_PROCESSING: ("EC P-256", "an EC P-256 key"),
}
_KIND_NAMES = {
    KIND_MERCHANT_IDENTITY: "A merchant identity certificate",
    KIND_PAYMENT_PROCESSING: "A payment processing certificate",
}

RequestKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# The organization in the name of every CA Apple issues Apple Pay certificates from
# (https://www.apple.com/certificateauthority/: "Apple Worldwide Developer Relations
# Certification Authority", O=Apple Inc.).
APPLE_ISSUER_ORGANIZATION = "Apple Inc."


def merchant_identifier_problem(value: str) -> str:
    """Why `value` is not a merchant identifier in Apple's format, "" when it is."""
    if not value:
        return "Enter the merchant identifier, e.g. merchant.com.example.shop."
    if len(value) > MERCHANT_IDENTIFIER_MAX_LENGTH:
        return f"A merchant identifier has at most {MERCHANT_IDENTIFIER_MAX_LENGTH} characters."
    if not _MERCHANT_IDENTIFIER.fullmatch(value):
        return (
            "A merchant identifier starts with “merchant.” followed by a reverse domain name "
            "of letters, digits and hyphens, e.g. merchant.com.example.shop."
        )
    return ""


def key_requirement_problem(kind: str, key_description: str) -> str:
    """Why a certificate with a `key_description` key ("RSA 2048", "EC P-256") cannot be of
    `kind`, "" when it can (always for kinds without a requirement)."""
    requirement = KEY_REQUIREMENTS.get(kind)
    if requirement is None or key_description == requirement[0]:
        return ""
    return (
        f"{_KIND_NAMES[kind]} has {requirement[1]} (Apple's requirement); "
        f"this one has {key_description or 'a key of unknown type'}."
    )


def request_key_generate(kind: str) -> RequestKey:
    """A fresh private key of the type Apple requires for `kind`."""
    if kind == KIND_MERCHANT_IDENTITY:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == KIND_PAYMENT_PROCESSING:
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"Apple issues no certificate from a CSR for {kind!r}")


def csr_create(*, key: RequestKey, merchant_identifier: str, email: str = "") -> str:
    """The certificate signing request for `key`, as PEM text."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, merchant_identifier)]
    if email:
        attributes.insert(0, x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")


def csr_filename(merchant_identifier: str) -> str:
    """The download name Apple's portal expects, e.g. merchant.com.example.certSigningRequest."""
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in merchant_identifier)
    return f"{safe or 'request'}.certSigningRequest"


def public_key_der(key: object) -> bytes:
    """SubjectPublicKeyInfo DER of a private or public key, to compare keys."""
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_merchant_identifier(certificate: x509.Certificate) -> str:
    """The merchant identifier the certificate's subject names (UID first), "" if none."""
    subject = certificate.subject
    for oid in (NameOID.USER_ID, NameOID.COMMON_NAME):
        for attribute in subject.get_attributes_for_oid(oid):
            value = attribute.value
            text = value if isinstance(value, str) else value.decode("utf-8", errors="replace")
            match = _MERCHANT_IDENTIFIER_IN_TEXT.search(text)
            if match:
                return match.group(0)
    return ""


def issuer_not_apple_warning(kind: str, certificate: x509.Certificate) -> str:
    """Why an Apple Pay certificate from an issuer other than Apple is suspect, naming the
    issuer; "" when Apple issued it (or for other kinds)."""
    if kind not in _KIND_NAMES:
        return ""
    issuer = certificate.issuer
    organizations = [
        attribute.value for attribute in issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    if APPLE_ISSUER_ORGANIZATION in organizations:
        return ""
    common_names = [
        attribute.value for attribute in issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    named = common_names[0] if common_names else issuer.rfc4514_string() or "an unnamed issuer"
    if organizations and organizations[0] not in named:
        named = f"{named} ({organizations[0]})"
    return (
        f"{_KIND_NAMES[kind]} is issued by Apple, but this one was issued by {named}. It is "
        "stored, but Apple Pay works only with the certificate Apple issued: check that this "
        "is the one from your Apple Developer account."
    )


def identity_proof_problem(data: bytes) -> str:
    """Why `data` must not be published as the domain-association file, "" when it may."""
    if not data.strip():
        return "The file is empty."
    if re.search(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----", data):
        return (
            "This file holds a private key: it would be published on every shop. Upload the "
            "domain-association file Apple (or your payment provider) gave you."
        )
    if re.search(rb"-----BEGIN (NEW )?CERTIFICATE REQUEST-----", data):
        return "This is a certificate signing request, not the domain-association file."
    if b"-----BEGIN CERTIFICATE-----" in data or _is_der_certificate(data):
        return (
            "This is a certificate, not the domain-association file: upload it as an Apple "
            "Pay merchant identity or payment processing certificate."
        )
    if _is_der_private_key_or_pkcs12(data):
        return (
            "This file holds a private key (DER or PKCS#12): it would be published on every "
            "shop. Upload the domain-association file Apple (or your payment provider) gave you."
        )
    return ""


def _is_der_certificate(data: bytes) -> bool:
    if not data.startswith(b"\x30"):
        return False
    try:
        x509.load_der_x509_certificate(data)
    except ValueError:
        return False
    return True


def _is_der_private_key_or_pkcs12(data: bytes) -> bool:
    """True for a DER SEQUENCE that opens as a private key or whose first element is the
    PKCS#12 version (3)."""
    if not data.startswith(b"\x30") or len(data) < 5:
        return False
    length_byte = data[1]
    offset = 2 + (length_byte & 0x7F if length_byte & 0x80 else 0)
    if data[offset : offset + 3] == b"\x02\x01\x03":
        return True
    # The structure says it, encrypted or not: loading the key could cost what its file
    # declares (a DSA key computes a modular exponentiation of any size).
    return private_key_structure_found(data)
