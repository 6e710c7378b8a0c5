"""certificates/apple.py, the pure part of Apple Pay: no database."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certificates import apple
from certmgr import demo_pki
from tests.apple import MERCHANT, PROOF_BYTES, apple_issue, apple_subject, keychain_p12


@pytest.mark.parametrize(
    "value", ["merchant.com.example", "merchant.com.acme-tickets.shop", "merchant.X1.b-2"]
)
def test_it_accepts_merchant_identifiers_in_apples_format(value):
    assert apple.merchant_identifier_problem(value) == ""


@pytest.mark.parametrize(
    "value",
    [
        "",
        "merchant",
        "merchant.",
        "com.example",
        "Merchant.com.example",
        "merchant..example",
        "merchant.com.example.",
        "merchant.com/example",
        "merchant.com example",
        "merchant." + "a" * 260,
    ],
)
def test_it_refuses_other_merchant_identifiers(value):
    assert apple.merchant_identifier_problem(value)


def test_each_kind_has_its_key_type():
    assert apple.key_requirement_problem(apple.KIND_MERCHANT_IDENTITY, "RSA 2048") == ""
    assert apple.key_requirement_problem(apple.KIND_PAYMENT_PROCESSING, "EC P-256") == ""
    assert "RSA 2048-bit" in apple.key_requirement_problem(apple.KIND_MERCHANT_IDENTITY, "RSA 3072")
    assert "EC P-256" in apple.key_requirement_problem(apple.KIND_PAYMENT_PROCESSING, "Ed25519")
    assert apple.key_requirement_problem("ssl", "RSA 1024") == ""


def test_it_generates_the_key_each_kind_needs():
    rsa_key = apple.request_key_generate(apple.KIND_MERCHANT_IDENTITY)
    ec_key = apple.request_key_generate(apple.KIND_PAYMENT_PROCESSING)
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and rsa_key.key_size == 2048
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey) and ec_key.curve.name == "secp256r1"
    with pytest.raises(ValueError):
        apple.request_key_generate(apple.KIND_IDENTITY_PROOF)


def test_the_csr_names_the_merchant_and_is_signed_by_the_key():
    key = apple.request_key_generate(apple.KIND_PAYMENT_PROCESSING)

    csr = x509.load_pem_x509_csr(apple.csr_create(key=key, merchant_identifier=MERCHANT).encode())

    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == f"CN={MERCHANT}"
    assert apple.public_key_der(csr.public_key()) == apple.public_key_der(key)
    assert apple.csr_filename(MERCHANT) == f"{MERCHANT}.certSigningRequest"
    assert apple.csr_filename('merchant.a"b/c') == "merchant.a_b_c.certSigningRequest"


def test_it_reads_the_merchant_identifier_apple_puts_in_the_subject(apple_ca):
    named = apple_issue(apple_ca, key_type="ec256")
    common_name_only = apple_issue(
        apple_ca,
        key_type="ec256",
        subject=x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "Apple Pay Processing:merchant.com.x")]
        ),
    )
    unnamed = apple_issue(
        apple_ca, key_type="ec256", subject=apple_subject("merchant", common_name="Apple Pay")
    )

    assert apple.certificate_merchant_identifier(named.certificate) == MERCHANT
    assert apple.certificate_merchant_identifier(common_name_only.certificate) == "merchant.com.x"
    assert apple.certificate_merchant_identifier(unnamed.certificate) == ""


def test_an_identity_proof_is_any_file_but_keys_and_certificates():
    leaf = demo_pki.self_signed_create(hostnames=["shop.example.test"])
    assert apple.identity_proof_problem(PROOF_BYTES) == ""
    assert apple.identity_proof_problem(b'{"pspId":"ABC","version":1}') == ""
    assert apple.identity_proof_problem(b"\n\t ") == "The file is empty."
    for data in (leaf.key_pem, demo_pki.key_pem(leaf.private_key, fmt="sec1")):
        assert "private key" in apple.identity_proof_problem(data)
    assert "private key (DER or PKCS#12)" in apple.identity_proof_problem(
        demo_pki.key_der(leaf.private_key)
    )
    assert "private key (DER or PKCS#12)" in apple.identity_proof_problem(
        demo_pki.key_der(leaf.private_key, passphrase=b"secret")
    )
    assert "PKCS#12" in apple.identity_proof_problem(keychain_p12(leaf, b"pw"))
    assert "is a certificate" in apple.identity_proof_problem(leaf.der)
    assert "is a certificate" in apple.identity_proof_problem(leaf.certificate_pem)
    key = apple.request_key_generate(apple.KIND_PAYMENT_PROCESSING)
    csr = apple.csr_create(key=key, merchant_identifier=MERCHANT).encode()
    assert "certificate signing request" in apple.identity_proof_problem(csr)


def test_issuer_not_apple_warning_names_the_issuer(apple_ca, pki):
    from_apple = apple_issue(apple_ca, key_type="rsa2048").certificate
    from_stranger = apple_issue(pki["intermediate"], key_type="rsa2048").certificate

    assert apple.issuer_not_apple_warning(apple.KIND_MERCHANT_IDENTITY, from_apple) == ""
    warning = apple.issuer_not_apple_warning(apple.KIND_MERCHANT_IDENTITY, from_stranger)
    assert warning.startswith(
        "A merchant identity certificate is issued by Apple, but this one was issued by "
        "Test Intermediate CA (certmgr demo (not for production))"
    )
    assert apple.issuer_not_apple_warning(apple.KIND_PAYMENT_PROCESSING, from_stranger)
    # Only Apple Pay's certificates are Apple's to issue.
    assert apple.issuer_not_apple_warning("ssl", from_stranger) == ""


def test_an_issuer_naming_only_its_common_name_is_named_by_it(apple_ca):
    issuer_key = demo_pki.private_key_generate("ec256")
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bare CA")])
    issued = apple_issue(apple_ca, key_type="rsa2048")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(issued.certificate.subject)
        .issuer_name(issuer_name)
        .public_key(issued.certificate.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued.certificate.not_valid_before_utc)
        .not_valid_after(issued.certificate.not_valid_after_utc)
        .sign(issuer_key, hashes.SHA256())
    )
    warning = apple.issuer_not_apple_warning(apple.KIND_MERCHANT_IDENTITY, certificate)
    assert "was issued by Bare CA. It is stored" in warning
