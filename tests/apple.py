"""Apple Pay material for tests, made at run time: certificates as Apple issues them (signed by
the session's stand-in Apple CA, the `apple_ca` fixture) and identity-proof files."""

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certmgr import demo_pki

MERCHANT = "merchant.com.acme-tickets.shop"
# Apple issues merchant identity and payment processing certificates for about 25 months.
APPLE_LIFETIME = timedelta(days=761)
# Not UTF-8, and ending with a newline: served byte for byte all the same.
PROOF_BYTES = b"7b2270737022\xff\xfe\x00 association-file\r\nline two\n"


def apple_subject(merchant: str, *, common_name: str | None = None) -> x509.Name:
    """A subject the way Apple writes it: the merchant identifier as UID."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, merchant),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name or f"Merchant ID: {merchant}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "TEAMID1234"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Tickets"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def apple_issue(
    apple_ca: demo_pki.Issued,
    *,
    key_type: str,
    merchant: str = MERCHANT,
    subject: x509.Name | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> demo_pki.Issued:
    """A certificate with its key, as Apple would issue it for `merchant`."""
    key = demo_pki.private_key_generate(key_type)
    not_before = not_before or datetime.now(UTC) - timedelta(hours=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject or apple_subject(merchant))
        .issuer_name(apple_ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after or not_before + APPLE_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(apple_ca.private_key, hashes.SHA256())
    )
    return demo_pki.Issued(certificate, key)


def apple_sign_csr(
    apple_ca: demo_pki.Issued, csr_pem: bytes, *, subject: x509.Name | None = None
) -> bytes:
    """Apple's answer to a CSR: a DER .cer for the CSR's key and subject, 25 months."""
    not_before = datetime.now(UTC) - timedelta(hours=1)
    certificate = demo_pki.csr_sign(
        csr_pem=csr_pem,
        issuer=apple_ca,
        not_before=not_before,
        not_after=not_before + APPLE_LIFETIME,
        subject=subject,
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def keychain_p12(issued: demo_pki.Issued, password: bytes) -> bytes:
    """A .p12 as Keychain Access exports it: key and certificate under the legacy
    PKCS#12 encryption (3DES, SHA-1 MAC) macOS has long used."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(password)
    )
    return pkcs12.serialize_key_and_certificates(
        b"Apple Pay", issued.private_key, issued.certificate, None, encryption
    )
