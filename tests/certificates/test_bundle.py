"""What certificate_bundle_parse accepts, what it refuses, and where it says so.

All key material is generated at run time by certmgr.demo_pki.
"""

import base64
import datetime
import random
import time

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certificates import bundle
from certificates.bundle import (
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
    BundleError,
    certificate_bundle_parse,
    certificate_pem_facts,
    private_key_load,
)
from certificates.bundle import check as bundle_check
from certificates.bundle import keys as bundle_keys
from certificates.bundle import pbe as bundle_pbe
from certmgr import demo_pki
from tests.certificates import expensive_inputs as expensive

HOSTNAMES = ["shop.example", "www.shop.example", "192.0.2.10"]
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def pki():
    """Root → intermediate → EC leaf."""
    root, intermediate, leaf = demo_pki.ssl_chain_create(hostnames=HOSTNAMES)
    return {"root": root, "intermediate": intermediate, "leaf": leaf}


@pytest.fixture(scope="module")
def long_chain(pki):
    """Root → intermediate → second intermediate → leaf."""
    second = demo_pki.ca_create(common_name="Second Intermediate", issuer=pki["intermediate"])
    leaf = demo_pki.leaf_create(issuer=second, hostnames=["deep.example"])
    return {"root": pki["root"], "first": pki["intermediate"], "second": second, "leaf": leaf}


@pytest.fixture(scope="module")
def rsa_leaf(pki):
    """An RSA 2048 leaf under the shared intermediate."""
    return demo_pki.leaf_create(
        issuer=pki["intermediate"], hostnames=["rsa.example"], key_type="rsa2048"
    )


def upload(**kwargs):
    """Parse an upload given as the form passes it (keyword arguments)."""
    return certificate_bundle_parse(**kwargs)


def plain(result):
    """The leaf's common name, the chain's common names and the errors."""
    return (
        result.leaf.common_name if result.leaf else None,
        [facts.common_name for facts in result.chain],
        result.errors,
    )


# --------------------------------------------------------------------------- accepted forms


def test_it_accepts_a_pem_certificate_with_its_key_and_chain(pki):
    leaf, intermediate = pki["leaf"], pki["intermediate"]
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=intermediate.certificate_pem,
    )
    assert result.ok, result.errors
    assert result.warnings == []
    assert result.unreadable is False
    assert result.leaf.common_name == "shop.example"
    assert [facts.common_name for facts in result.chain] == ["certmgr Demo Intermediate CA"]
    assert result.certificate_pem == leaf.certificate_pem.decode()
    assert result.chain_pem == intermediate.certificate_pem.decode()


def test_it_accepts_a_der_certificate(pki):
    leaf = pki["leaf"]
    result = upload(
        certificate=leaf.der, private_key=leaf.key_pem, chain=pki["intermediate"].certificate_pem
    )
    assert result.ok, result.errors
    assert result.certificate_pem == leaf.certificate_pem.decode()


def test_it_accepts_a_der_certificate_in_the_chain_field(pki):
    leaf = pki["leaf"]
    result = upload(
        certificate=leaf.certificate_pem, private_key=leaf.key_pem, chain=pki["intermediate"].der
    )
    assert result.ok, result.errors
    assert len(result.chain) == 1


def test_it_accepts_a_pkcs7_chain(pki):
    leaf = pki["leaf"]
    p7b = pkcs7.serialize_certificates(
        [pki["intermediate"].certificate, pki["root"].certificate], serialization.Encoding.PEM
    )
    result = upload(certificate=leaf.certificate_pem, private_key=leaf.key_pem, chain=p7b)
    assert result.ok, result.errors
    assert [facts.common_name for facts in result.chain] == ["certmgr Demo Intermediate CA"]


def test_it_accepts_a_pkcs1_rsa_key(rsa_leaf, pki):
    key = demo_pki.key_pem(rsa_leaf.private_key, fmt="pkcs1")
    assert key.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    result = upload(
        certificate=rsa_leaf.certificate_pem,
        private_key=key,
        chain=pki["intermediate"].certificate_pem,
    )
    assert result.ok, result.errors
    assert result.leaf.key_description == "RSA 2048"


def test_it_accepts_a_pkcs8_key(pki):
    leaf = pki["leaf"]
    key = demo_pki.key_pem(leaf.private_key, fmt="pkcs8")
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")
    result = upload(
        certificate=leaf.certificate_pem, private_key=key, chain=pki["intermediate"].certificate_pem
    )
    assert result.ok, result.errors


def test_it_accepts_a_sec1_ec_key(pki):
    leaf = pki["leaf"]
    key = demo_pki.key_pem(leaf.private_key, fmt="sec1")
    assert key.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    result = upload(
        certificate=leaf.certificate_pem, private_key=key, chain=pki["intermediate"].certificate_pem
    )
    assert result.ok, result.errors


def test_it_accepts_an_ec_key_preceded_by_ec_parameters(pki):
    leaf = pki["leaf"]
    # What `openssl ecparam -genkey` writes.
    parameters = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    key = parameters + demo_pki.key_pem(leaf.private_key, fmt="sec1")
    result = upload(
        certificate=leaf.certificate_pem, private_key=key, chain=pki["intermediate"].certificate_pem
    )
    assert result.ok, result.errors


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE])
def test_it_accepts_a_der_key(pki, passphrase):
    leaf = pki["leaf"]
    key = demo_pki.key_der(leaf.private_key, passphrase=passphrase and passphrase.encode())
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=key,
        chain=pki["intermediate"].certificate_pem,
        passphrase=passphrase,
    )
    assert result.ok, result.errors


def test_it_opens_an_encrypted_pkcs8_key_with_the_passphrase(pki):
    leaf = pki["leaf"]
    key = demo_pki.key_pem(leaf.private_key, passphrase=PASSPHRASE.encode())
    assert key.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=key,
        chain=pki["intermediate"].certificate_pem,
        passphrase=PASSPHRASE,
    )
    assert result.ok, result.errors
    assert result.private_key_pem == leaf.key_pem.decode()


@pytest.mark.parametrize("fmt", ["pkcs1", "sec1"])
def test_it_opens_a_legacy_encrypted_pem_key_with_the_passphrase(pki, rsa_leaf, fmt):
    issued = rsa_leaf if fmt == "pkcs1" else pki["leaf"]
    key = demo_pki.key_pem(issued.private_key, fmt=fmt, passphrase=PASSPHRASE.encode())
    assert b"Proc-Type: 4,ENCRYPTED" in key
    result = upload(
        certificate=issued.certificate_pem,
        private_key=key,
        chain=pki["intermediate"].certificate_pem,
        passphrase=PASSPHRASE,
    )
    assert result.ok, result.errors
    assert result.private_key_pem == issued.key_pem.decode()


@pytest.mark.parametrize("fmt", ["pkcs8", "sec1"])
@pytest.mark.parametrize("passphrase", [None, ""])
def test_it_asks_for_the_passphrase_of_an_encrypted_key(pki, fmt, passphrase):
    leaf = pki["leaf"]
    key = demo_pki.key_pem(leaf.private_key, fmt=fmt, passphrase=PASSPHRASE.encode())
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=key,
        chain=pki["intermediate"].certificate_pem,
        passphrase=passphrase,
    )
    assert result.errors == {FIELD_PASSPHRASE: [KEY_PASSPHRASE_MISSING_MESSAGE]}
    assert result.private_key_pem is None
    assert NO_KEY_WARNING not in result.warnings


@pytest.mark.parametrize("fmt", ["pkcs8", "sec1"])
def test_it_refuses_a_wrong_passphrase_on_the_passphrase_field(pki, fmt):
    leaf = pki["leaf"]
    key = demo_pki.key_pem(leaf.private_key, fmt=fmt, passphrase=PASSPHRASE.encode())
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=key,
        chain=pki["intermediate"].certificate_pem,
        passphrase="not it",
    )
    assert result.errors == {FIELD_PASSPHRASE: [KEY_PASSPHRASE_WRONG_MESSAGE]}


def test_it_ignores_a_passphrase_given_for_an_unencrypted_key(pki):
    leaf = pki["leaf"]
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=pki["intermediate"].certificate_pem,
        passphrase="unneeded",
    )
    assert result.ok, result.errors


def test_it_returns_the_key_as_unencrypted_pkcs8_and_keeps_it_out_of_repr(pki, rsa_leaf):
    key = demo_pki.key_pem(rsa_leaf.private_key, fmt="pkcs1")
    result = upload(
        certificate=rsa_leaf.certificate_pem,
        private_key=key,
        chain=pki["intermediate"].certificate_pem,
    )
    assert result.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert result.private_key_pem == rsa_leaf.key_pem.decode()
    assert "PRIVATE KEY" not in repr(result)


# --------------------------------------------------------------------------- chains


def test_it_orders_a_chain_of_two_intermediates(long_chain):
    leaf = long_chain["leaf"]
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=demo_pki.pem_join(long_chain["second"], long_chain["first"]),
    )
    assert result.ok, result.errors
    assert result.warnings == []
    assert [facts.common_name for facts in result.chain] == [
        "Second Intermediate",
        "certmgr Demo Intermediate CA",
    ]


def test_it_reorders_a_chain_given_out_of_order(long_chain):
    leaf = long_chain["leaf"]
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=demo_pki.pem_join(long_chain["first"], long_chain["second"]),
    )
    assert result.ok, result.errors
    assert result.warnings == [REORDERED_WARNING]
    assert result.chain_pem == demo_pki.pem_join(long_chain["second"], long_chain["first"]).decode()


def test_it_ignores_garbage_between_pem_blocks(long_chain):
    leaf = long_chain["leaf"]
    chain = (
        b"Bag Attributes\n    friendlyName: second\nsubject=/CN=Second Intermediate\n"
        + long_chain["second"].certificate_pem
        + b"\n\nsome notes the operator pasted\n"
        + long_chain["first"].certificate_pem
        + b"trailing words"
    )
    result = upload(certificate=leaf.certificate_pem, private_key=leaf.key_pem, chain=chain)
    assert result.ok, result.errors
    assert len(result.chain) == 2


def test_it_drops_a_self_signed_root_from_the_chain_with_a_note(long_chain):
    leaf = long_chain["leaf"]
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=demo_pki.pem_join(long_chain["second"], long_chain["first"], long_chain["root"]),
    )
    assert result.ok, result.errors
    assert result.warnings == [
        "A self-signed root certificate in the chain (CN=certmgr Demo Root CA) was dropped: "
        "browsers have their own copy."
    ]
    assert len(result.chain) == 2
    assert long_chain["root"].certificate_pem.decode() not in result.chain_pem


def test_it_drops_duplicate_certificates_silently(pki):
    leaf, intermediate = pki["leaf"], pki["intermediate"]
    result = upload(
        certificate=demo_pki.pem_join(leaf, intermediate),
        private_key=leaf.key_pem,
        chain=demo_pki.pem_join(intermediate, intermediate),
    )
    assert result.ok, result.errors
    assert result.warnings == []
    assert len(result.chain) == 1


def test_it_refuses_a_chain_from_another_ca(pki):
    leaf = pki["leaf"]
    stranger_root = demo_pki.ca_create(common_name="Stranger Root")
    stranger = demo_pki.ca_create(common_name="Stranger Intermediate", issuer=stranger_root)
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=stranger.certificate_pem,
    )
    assert result.errors == {
        FIELD_CHAIN: [
            "The chain is broken: CN=Stranger Intermediate does not link to the certificate."
        ]
    }


def test_it_lists_only_the_first_few_stray_certificates(pki):
    leaf = pki["leaf"]
    strangers = [demo_pki.ca_create(common_name=f"Stranger {number}") for number in range(8)]
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=demo_pki.pem_join(pki["intermediate"], *strangers),
    )
    messages = result.errors[FIELD_CHAIN]
    assert len(messages) == 6
    assert messages[0] == "The chain is broken: CN=Stranger 0 does not link to the certificate."
    assert messages[-1] == "3 more certificates do not link."


def test_it_refuses_an_intermediate_whose_signature_does_not_verify(pki):
    leaf = pki["leaf"]
    # Same name as the real intermediate, different key: a forgery or a re-key.
    impostor = demo_pki.ca_create(common_name="certmgr Demo Intermediate CA", issuer=pki["root"])
    result = upload(
        certificate=leaf.certificate_pem, private_key=leaf.key_pem, chain=impostor.certificate_pem
    )
    assert list(result.errors) == [FIELD_CHAIN]
    (message,) = result.errors[FIELD_CHAIN]
    assert message.startswith("The chain is broken: CN=certmgr Demo Intermediate CA")
    assert message.endswith("signature does not verify.")


# --------------------------------------------------------------------------- combined files


@pytest.mark.parametrize(
    "order",
    [
        ("key", "leaf", "intermediate"),
        ("leaf", "intermediate", "key"),
        ("intermediate", "key", "leaf"),
        ("intermediate", "leaf", "root", "key"),
    ],
)
def test_it_accepts_a_combined_pem_in_any_order(pki, order):
    parts = {
        "key": pki["leaf"].key_pem,
        "leaf": pki["leaf"].certificate_pem,
        "intermediate": pki["intermediate"].certificate_pem,
        "root": pki["root"].certificate_pem,
    }
    result = upload(certificate=b"".join(parts[name] for name in order))
    assert result.ok, result.errors
    assert result.leaf.common_name == "shop.example"
    assert [facts.common_name for facts in result.chain] == ["certmgr Demo Intermediate CA"]
    assert result.private_key_pem == pki["leaf"].key_pem.decode()


def test_it_finds_the_leaf_of_a_combined_pem_without_a_key(long_chain):
    combined = demo_pki.pem_join(long_chain["first"], long_chain["second"], long_chain["leaf"])
    result = upload(certificate=combined)
    assert plain(result) == (
        "deep.example",
        ["Second Intermediate", "certmgr Demo Intermediate CA"],
        {},
    )


def test_it_accepts_the_same_key_in_the_combined_file_and_the_key_field(pki):
    leaf = pki["leaf"]
    combined = demo_pki.pem_join(leaf.key_pem, leaf, pki["intermediate"])
    key = demo_pki.key_pem(leaf.private_key, fmt="sec1")
    result = upload(certificate=combined, private_key=key)
    assert result.ok, result.errors


def test_it_refuses_two_different_keys(pki):
    leaf = pki["leaf"]
    combined = demo_pki.pem_join(leaf.key_pem, leaf, pki["intermediate"])
    other_key = demo_pki.key_pem(demo_pki.private_key_generate())
    result = upload(certificate=combined, private_key=other_key)
    assert TWO_KEYS_MESSAGE in result.errors[FIELD_CERTIFICATE]
    assert result.errors[FIELD_PRIVATE_KEY] == [KEY_MISMATCH_MESSAGE]


# --------------------------------------------------------------------------- PKCS#12


def test_it_opens_a_pkcs12_file_with_its_password(pki):
    p12 = demo_pki.pkcs12_bundle(
        leaf=pki["leaf"], chain=[pki["intermediate"]], password=PASSPHRASE.encode()
    )
    result = upload(certificate=p12, passphrase=PASSPHRASE)
    assert result.ok, result.errors
    assert result.warnings == []
    assert result.leaf.common_name == "shop.example"
    assert len(result.chain) == 1
    assert result.private_key_pem == pki["leaf"].key_pem.decode()


def test_it_refuses_a_pkcs12_file_with_a_wrong_password(pki):
    p12 = demo_pki.pkcs12_bundle(leaf=pki["leaf"], chain=[], password=PASSPHRASE.encode())
    result = upload(certificate=p12, passphrase="not it")
    assert result.errors == {FIELD_PASSPHRASE: [PKCS12_PASSWORD_WRONG_MESSAGE]}
    assert result.unreadable is False


@pytest.mark.parametrize("passphrase", [None, ""])
def test_it_asks_for_the_password_of_a_pkcs12_file(pki, passphrase):
    p12 = demo_pki.pkcs12_bundle(leaf=pki["leaf"], chain=[], password=PASSPHRASE.encode())
    result = upload(certificate=p12, passphrase=passphrase)
    assert result.errors == {FIELD_PASSPHRASE: [PKCS12_PASSWORD_MISSING_MESSAGE]}
    assert result.unreadable is False
    assert result.leaf is None


@pytest.mark.parametrize("passphrase", [None, "", "typed anyway"])
def test_it_opens_a_pkcs12_file_without_a_password(pki, passphrase):
    p12 = demo_pki.pkcs12_bundle(leaf=pki["leaf"], chain=[pki["intermediate"]], password=None)
    result = upload(certificate=p12, passphrase=passphrase)
    assert result.ok, result.errors
    assert result.leaf.common_name == "shop.example"


def test_it_reads_a_pkcs12_file_without_a_key(pki):
    p12 = pkcs12.serialize_key_and_certificates(
        b"certificates only",
        None,
        pki["leaf"].certificate,
        [pki["intermediate"].certificate],
        serialization.NoEncryption(),
    )
    result = upload(certificate=p12)
    assert result.ok, result.errors
    assert result.leaf.common_name == "shop.example"
    assert result.warnings == [NO_KEY_WARNING]


# --------------------------------------------------------------------------- unreadable


@pytest.fixture(
    scope="module",
    params=["truncated DER", "random bytes", "empty file", "damaged PEM"],
)
def unreadable_file(request, pki):
    """Something in the certificate field that is not a certificate."""
    leaf = pki["leaf"]
    damaged = leaf.certificate_pem.replace(b"\nM", b"\n*", 1)
    return {
        "truncated DER": leaf.der[: len(leaf.der) // 2],
        "random bytes": random.Random(4).randbytes(2000),
        "empty file": b"",
        "damaged PEM": damaged,
    }[request.param]


@pytest.mark.parametrize("form", ["PEM", "DER", "encrypted DER", "damaged PEM"])
def test_a_key_in_the_certificate_field_is_refused_not_kept_as_unreadable(form, pki):
    # Kept as uploaded (unreadable, expiry typed by hand), the key would be stored in clear.
    key = pki["leaf"].private_key
    data = {
        "PEM": pki["leaf"].key_pem,
        "DER": key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "encrypted DER": key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
        "damaged PEM": pki["leaf"].key_pem.replace(b"\nM", b"\n*", 1),
    }[form]
    result = upload(certificate=data)
    assert result.unreadable is False
    assert KEY_NOT_CERTIFICATE_MESSAGE in result.errors[FIELD_CERTIFICATE]


def test_it_marks_unreadable_files(unreadable_file):
    result = upload(certificate=unreadable_file)
    assert result.unreadable is True
    assert result.leaf is None
    assert result.certificate_pem == ""
    assert UNREADABLE_MESSAGE in result.errors[FIELD_CERTIFICATE]
    assert set(result.errors) == {FIELD_CERTIFICATE}


def test_it_names_the_damaged_block(pki):
    leaf = pki["leaf"]
    damaged = pki["intermediate"].certificate_pem.replace(b"\nM", b"\n*", 1)
    result = upload(certificate=leaf.certificate_pem + damaged, private_key=leaf.key_pem)
    assert result.errors == {
        FIELD_CERTIFICATE: ["Block 2 (CERTIFICATE) is damaged: its base64 text is invalid."]
    }
    assert result.leaf.common_name == "shop.example"


def test_it_names_a_block_without_an_end_line(pki):
    leaf = pki["leaf"]
    cut = pki["intermediate"].certificate_pem.split(b"-----END")[0]
    result = upload(certificate=leaf.certificate_pem, private_key=leaf.key_pem, chain=cut)
    assert result.errors == {FIELD_CHAIN: ["Block 1 (CERTIFICATE) is damaged: it has no END line."]}


def test_it_still_checks_the_key_when_the_certificate_is_unreadable(pki):
    good = upload(certificate=b"nonsense", private_key=pki["leaf"].key_pem)
    assert good.unreadable is True
    assert good.private_key_pem == pki["leaf"].key_pem.decode()
    assert set(good.errors) == {FIELD_CERTIFICATE}

    encrypted = demo_pki.key_pem(pki["leaf"].private_key, passphrase=PASSPHRASE.encode())
    locked = upload(certificate=b"nonsense", private_key=encrypted)
    assert locked.unreadable is True
    assert locked.errors[FIELD_PASSPHRASE] == [KEY_PASSPHRASE_MISSING_MESSAGE]


def test_it_still_reads_the_chain_when_the_certificate_is_unreadable(pki):
    result = upload(certificate=b"nonsense", chain=pki["intermediate"].certificate_pem)
    assert result.unreadable is True
    assert [facts.common_name for facts in result.chain] == ["certmgr Demo Intermediate CA"]


def test_it_recognises_a_certificate_request(pki):
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(pki["leaf"].certificate.subject)
        .sign(pki["leaf"].private_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    result = upload(certificate=csr)
    assert result.unreadable is True
    assert any("signing request" in message for message in result.errors[FIELD_CERTIFICATE])


# --------------------------------------------------------------------------- keys refused


def test_it_refuses_a_key_that_does_not_belong_to_the_certificate(pki):
    other_key = demo_pki.key_pem(demo_pki.private_key_generate())
    result = upload(
        certificate=pki["leaf"].certificate_pem,
        private_key=other_key,
        chain=pki["intermediate"].certificate_pem,
    )
    assert result.errors == {FIELD_PRIVATE_KEY: [KEY_MISMATCH_MESSAGE]}
    assert result.leaf.common_name == "shop.example"


def test_it_refuses_a_key_of_another_type(rsa_leaf, pki):
    result = upload(
        certificate=rsa_leaf.certificate_pem,
        private_key=pki["leaf"].key_pem,
        chain=pki["intermediate"].certificate_pem,
    )
    assert result.errors == {FIELD_PRIVATE_KEY: [KEY_MISMATCH_MESSAGE]}


def test_it_puts_a_combined_file_key_mismatch_on_the_certificate_field(pki):
    other_key = demo_pki.key_pem(demo_pki.private_key_generate())
    combined = demo_pki.pem_join(other_key, pki["leaf"], pki["intermediate"])
    result = upload(certificate=combined)
    assert result.errors == {FIELD_CERTIFICATE: [KEY_MISMATCH_MESSAGE]}


@pytest.mark.parametrize(
    "garbage",
    [b"not a key at all", random.Random(7).randbytes(300), b"-----BEGIN CERTIFICATE-----\n"],
)
def test_it_refuses_garbage_as_a_private_key(pki, garbage):
    result = upload(
        certificate=pki["leaf"].certificate_pem,
        private_key=garbage,
        chain=pki["intermediate"].certificate_pem,
    )
    assert list(result.errors) == [FIELD_PRIVATE_KEY]
    assert result.private_key_pem is None


def test_it_refuses_text_without_pem_blocks_as_a_private_key(pki):
    result = upload(certificate=pki["leaf"].certificate_pem, private_key=b"hunter2")
    assert result.errors[FIELD_PRIVATE_KEY] == [NOT_A_KEY_MESSAGE]


# --------------------------------------------------------------------------- policy


def test_it_refuses_an_rsa_1024_key(pki):
    weak = demo_pki.leaf_create(
        issuer=pki["intermediate"], hostnames=["weak.example"], key_type="rsa1024"
    )
    result = upload(
        certificate=weak.certificate_pem,
        private_key=weak.key_pem,
        chain=pki["intermediate"].certificate_pem,
    )
    assert result.errors == {FIELD_CERTIFICATE: ["The RSA key has 1024 bits; 2048 is the minimum."]}


def test_it_refuses_a_sha1_signed_certificate(pki):
    leaf = demo_pki.leaf_create(
        issuer=pki["intermediate"], hostnames=["old.example"], hash_algorithm=hashes.SHA1()
    )
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=pki["intermediate"].certificate_pem,
    )
    assert result.leaf.signature_hash == "sha1"
    assert result.errors == {
        FIELD_CERTIFICATE: ["The certificate is signed with SHA-1, which browsers reject."]
    }


def test_it_refuses_a_sha1_signed_intermediate_on_the_chain(pki):
    intermediate = demo_pki.ca_create(
        common_name="Old Intermediate", issuer=pki["root"], hash_algorithm=hashes.SHA1()
    )
    leaf = demo_pki.leaf_create(issuer=intermediate, hostnames=["old.example"])
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=demo_pki.pem_join(intermediate, pki["root"]),
    )
    assert result.errors == {
        FIELD_CHAIN: [
            "The intermediate certificate CN=Old Intermediate is signed with SHA-1, "
            "which browsers reject."
        ]
    }


def test_it_refuses_an_expired_certificate(pki):
    leaf = pki["leaf"]
    later = leaf.certificate.not_valid_after_utc + datetime.timedelta(days=1)
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=pki["intermediate"].certificate_pem,
        now=later,
    )
    expiry = f"{leaf.certificate.not_valid_after_utc:%Y-%m-%d}"
    assert result.errors == {FIELD_CERTIFICATE: [f"The certificate expired on {expiry}."]}


def test_it_refuses_a_certificate_that_is_not_valid_yet(pki):
    leaf = pki["leaf"]
    earlier = leaf.certificate.not_valid_before_utc - datetime.timedelta(hours=1)
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=pki["intermediate"].certificate_pem,
        now=earlier,
    )
    (message,) = result.errors[FIELD_CERTIFICATE]
    assert message.startswith("The certificate is not valid before ")


def test_it_only_warns_about_expiry_and_sha1_for_other_kinds(pki):
    leaf = demo_pki.leaf_create(
        issuer=pki["intermediate"],
        hostnames=["merchant.example"],
        hash_algorithm=hashes.SHA1(),
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2021, 1, 2, tzinfo=datetime.UTC),
    )
    result = upload(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=pki["intermediate"].certificate_pem,
        kind="apple_pay_merchant_identity",
    )
    assert result.ok, result.errors
    assert "The certificate expired on 2021-01-02." in result.warnings
    assert "The certificate is signed with SHA-1, which browsers reject." in result.warnings


def test_it_warns_when_there_is_no_key(pki):
    result = upload(
        certificate=pki["leaf"].certificate_pem, chain=pki["intermediate"].certificate_pem
    )
    assert result.ok, result.errors
    assert result.private_key_pem is None
    assert result.warnings == [NO_KEY_WARNING]


def test_it_warns_when_there_is_no_chain(pki):
    result = upload(certificate=pki["leaf"].certificate_pem, private_key=pki["leaf"].key_pem)
    assert result.ok, result.errors
    assert result.warnings == [NO_INTERMEDIATES_WARNING]


def test_it_warns_about_a_self_signed_certificate_but_not_about_its_chain():
    issued = demo_pki.self_signed_create(hostnames=["self.example"])
    result = upload(certificate=issued.certificate_pem, private_key=issued.key_pem)
    assert result.ok, result.errors
    assert result.leaf.self_signed is True
    assert result.warnings == ["The certificate is self-signed: browsers will not trust it."]


# --------------------------------------------------------------------------- facts


def test_it_describes_the_certificate(pki):
    certificate = pki["leaf"].certificate
    result = upload(certificate=pki["leaf"].certificate_pem)
    facts = result.leaf
    assert facts.subject == certificate.subject.rfc4514_string()
    assert facts.common_name == "shop.example"
    assert facts.sans == HOSTNAMES
    assert facts.issuer == pki["intermediate"].certificate.subject.rfc4514_string()
    assert facts.serial_number == format(certificate.serial_number, "x")
    assert facts.fingerprint_sha256 == certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    assert facts.not_before == certificate.not_valid_before_utc
    assert facts.not_after == certificate.not_valid_after_utc
    assert facts.not_after.tzinfo is datetime.UTC
    assert (facts.key_type, facts.key_size, facts.key_curve) == ("EC", 256, "P-256")
    assert facts.key_description == "EC P-256"
    assert facts.signature_hash == "sha256"
    assert (facts.is_ca, facts.self_signed) == (False, False)


def test_it_describes_the_chain(pki):
    result = upload(
        certificate=pki["leaf"].certificate_pem, chain=pki["intermediate"].certificate_pem
    )
    (intermediate,) = result.chain
    assert (intermediate.is_ca, intermediate.self_signed) == (True, False)
    assert intermediate.sans == []


def test_it_describes_a_p384_certificate(pki):
    leaf = demo_pki.leaf_create(
        issuer=pki["intermediate"], hostnames=["p384.example"], key_type="ec384"
    )
    facts = upload(certificate=leaf.certificate_pem, private_key=leaf.key_pem).leaf
    assert (facts.key_type, facts.key_size, facts.key_curve) == ("EC", 384, "P-384")
    assert facts.key_description == "EC P-384"


def test_it_describes_an_ed25519_certificate():
    root = demo_pki.ca_create(common_name="Edwards Root", key_type="ed25519")
    leaf = demo_pki.leaf_create(issuer=root, hostnames=["ed.example"], key_type="ed25519")
    result = upload(certificate=leaf.certificate_pem, private_key=leaf.key_pem)
    assert result.ok, result.errors
    facts = result.leaf
    assert (facts.key_type, facts.key_size, facts.key_curve) == ("Ed25519", None, "")
    assert facts.signature_hash == ""
    assert facts.key_description == "Ed25519"


def test_certificate_pem_facts_reads_a_stored_pem(pki):
    facts = certificate_pem_facts(pki["intermediate"].certificate_pem.decode())
    assert facts.common_name == "certmgr Demo Intermediate CA"
    assert facts.is_ca is True
    with pytest.raises(ValueError):
        certificate_pem_facts("not a certificate")


def test_private_key_load_opens_a_key_or_says_why_not(pki):
    encrypted = demo_pki.key_pem(pki["leaf"].private_key, passphrase=PASSPHRASE.encode())
    key = private_key_load(encrypted, passphrase=PASSPHRASE)
    assert demo_pki.key_pem(key) == pki["leaf"].key_pem
    with pytest.raises(BundleError) as missing:
        private_key_load(encrypted)
    assert (missing.value.field, missing.value.message) == (
        FIELD_PASSPHRASE,
        KEY_PASSPHRASE_MISSING_MESSAGE,
    )
    with pytest.raises(BundleError) as garbage:
        private_key_load(b"garbage")
    assert garbage.value.field == FIELD_PRIVATE_KEY


# --------------------------------------------------------------------------- hostile and odd input


@pytest.mark.parametrize("field", [FIELD_CERTIFICATE, FIELD_PRIVATE_KEY, FIELD_CHAIN])
def test_it_refuses_files_over_64_kib_on_their_field(pki, field):
    files = {
        FIELD_CERTIFICATE: pki["leaf"].certificate_pem,
        FIELD_PRIVATE_KEY: pki["leaf"].key_pem,
        FIELD_CHAIN: pki["intermediate"].certificate_pem,
    }
    files[field] = files[field] + b"\n" * MAX_FILE_BYTES
    result = upload(**files)
    assert result.errors == {field: [TOO_LARGE_MESSAGE]}


def test_it_handles_thousands_of_pem_blocks_quickly(pki):
    block = b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
    hostile = block * (MAX_FILE_BYTES // len(block))
    assert hostile.count(b"BEGIN") > 1000
    # CPU time, not wall time: on a busy machine the test may wait for a core, and wall time
    # would count that wait against the parser. The refusal costs well under a millisecond of
    # CPU (reading every block, were there no limit, some tens of milliseconds), so the bound
    # only catches gross regressions, such as quadratic work on the 64 KiB file.
    started = time.process_time()
    result = upload(certificate=hostile, private_key=hostile, chain=hostile)
    assert time.process_time() - started < 1
    assert set(result.errors) == {FIELD_CERTIFICATE, FIELD_PRIVATE_KEY, FIELD_CHAIN}
    assert "PEM blocks" in result.errors[FIELD_CHAIN][0]


def test_it_caps_the_number_of_certificates_per_field(pki):
    many = pki["intermediate"].certificate_pem * 60
    assert len(many) < MAX_FILE_BYTES
    result = upload(certificate=pki["leaf"].certificate_pem, chain=many)
    assert result.errors == {FIELD_CHAIN: ["The file holds 60 certificates; at most 50 are read."]}


def test_it_caps_the_number_of_damage_messages(pki):
    damaged = b"-----BEGIN CERTIFICATE-----\n*\n-----END CERTIFICATE-----\n" * 20
    result = upload(certificate=pki["leaf"].certificate_pem, chain=damaged)
    assert len(result.errors[FIELD_CHAIN]) == 6
    assert result.errors[FIELD_CHAIN][-1] == "15 more blocks are damaged."


def test_it_accepts_crlf_line_endings_and_a_byte_order_mark(pki):
    def windows(pem: bytes) -> bytes:
        return b"\xef\xbb\xbf" + pem.replace(b"\n", b"\r\n")

    leaf = pki["leaf"]
    encrypted = demo_pki.key_pem(leaf.private_key, fmt="sec1", passphrase=PASSPHRASE.encode())
    result = upload(
        certificate=windows(leaf.certificate_pem),
        private_key=windows(encrypted),
        chain=windows(pki["intermediate"].certificate_pem),
        passphrase=PASSPHRASE,
    )
    assert result.ok, result.errors
    assert "\r" not in result.certificate_pem


def test_it_accepts_utf16_text(pki):
    leaf = pki["leaf"]
    result = upload(
        certificate=leaf.certificate_pem.decode().encode("utf-16"), private_key=leaf.key_pem
    )
    assert result.ok, result.errors


def test_it_accepts_base64_lines_of_any_width(pki):
    leaf = pki["leaf"]
    body = base64.b64encode(leaf.der)
    one_line = b"-----BEGIN CERTIFICATE-----\n" + body + b"\n-----END CERTIFICATE-----\n"
    result = upload(certificate=one_line, private_key=leaf.key_pem)
    assert result.ok, result.errors


def test_it_never_raises_on_mangled_input(pki):
    leaf, intermediate = pki["leaf"], pki["intermediate"]
    p12 = demo_pki.pkcs12_bundle(leaf=leaf, chain=[intermediate], password=b"pw")
    rng = random.Random(1)
    samples = [leaf.der, leaf.certificate_pem, leaf.key_pem, p12]
    for sample in samples:
        for _ in range(25):
            mangled = bytearray(sample)
            for _ in range(rng.randint(1, 4)):
                mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            cut = bytes(mangled[: rng.randint(0, len(mangled))])
            for data in (bytes(mangled), cut):
                result = upload(certificate=data, private_key=data, chain=data, passphrase="pw")
                assert isinstance(result.errors, dict)


def test_it_refuses_a_pkcs12_file_with_an_absurd_key_derivation_cost(pki, monkeypatch):
    monkeypatch.setattr(bundle_pbe, "MAX_KDF_ROUNDS", 1000)
    p12 = demo_pki.pkcs12_bundle(leaf=pki["leaf"], chain=[], password=b"pw")
    result = upload(certificate=p12, passphrase="pw")
    (message,) = result.errors[FIELD_CERTIFICATE]
    assert "more key-derivation work than certmgr does for one file" in message
    assert "PBKDF2 with" in message
    assert result.unreadable is False


def test_it_refuses_an_encrypted_key_with_an_absurd_key_derivation_cost(pki, monkeypatch):
    monkeypatch.setattr(bundle_pbe, "MAX_KDF_ROUNDS", 1000)
    key = demo_pki.key_pem(pki["leaf"].private_key, passphrase=b"pw")
    result = upload(certificate=pki["leaf"].certificate_pem, private_key=key, passphrase="pw")
    (message,) = result.errors[FIELD_PRIVATE_KEY]
    assert "more key-derivation work than certmgr does for one file" in message


def test_it_refuses_an_rsa_key_whose_parts_do_not_fit_together(rsa_leaf):
    parts = rsa_leaf.private_key.private_numbers()
    # Wrong private exponents: the key can no longer sign for its public key.
    broken = rsa.RSAPrivateNumbers(
        parts.p,
        parts.q,
        parts.d + 2,
        parts.dmp1 + 2,
        parts.dmq1 + 2,
        parts.iqmp,
        parts.public_numbers,
    ).private_key(unsafe_skip_rsa_key_validation=True)
    result = upload(certificate=rsa_leaf.certificate_pem, private_key=demo_pki.key_pem(broken))
    assert result.errors == {FIELD_PRIVATE_KEY: [KEY_INCONSISTENT_MESSAGE]}
    assert result.private_key_pem is None


# --------------------------------------------------------------------------- malformed parts
# Files of the cryptography-vectors package (dev extra) that cryptography loads but whose
# names, extensions or signature parameters fail when first read.

MALFORMED_CERTIFICATES = [
    "x509/custom/invalid_version.pem",
    "x509/custom/name_attribute_unsupported_tag.pem",
    "x509/custom/long-form-name-attribute.pem",
    "x509/custom/invalid_utf8_common_name.pem",
    "x509/custom/two_basic_constraints.pem",
    "x509/custom/rsa_pss_cert_no_sig_params.der",
    "x509/san_edipartyname.der",
    "x509/san_x400address.der",
]


def vector(path: str) -> bytes:
    with cryptography_vectors.open_vector_file(path, "rb") as file:
        return file.read()


@pytest.mark.parametrize("path", MALFORMED_CERTIFICATES)
def test_it_reports_a_certificate_with_malformed_parts_as_unreadable(path):
    result = upload(certificate=vector(path))
    assert result.unreadable
    assert UNREADABLE_MESSAGE in result.errors[FIELD_CERTIFICATE]
    assert set(result.errors) == {FIELD_CERTIFICATE}
    assert UNEXPECTED_FAILURE_MESSAGE not in result.errors[FIELD_CERTIFICATE]


@pytest.mark.parametrize("path", MALFORMED_CERTIFICATES)
@pytest.mark.parametrize("field", [FIELD_PRIVATE_KEY, FIELD_CHAIN])
def test_it_puts_a_certificate_with_malformed_parts_on_the_field_it_came_in(pki, path, field):
    files = {"certificate": pki["leaf"].certificate_pem, "private_key": pki["leaf"].key_pem}
    files[field] = vector(path)
    result = upload(**files)
    assert set(result.errors) == {field}, result.errors
    assert result.leaf is not None
    assert result.leaf.fingerprint_sha256.replace(":", "").lower() == (
        pki["leaf"].certificate.fingerprint(hashes.SHA256()).hex()
    )


def test_it_refuses_a_pkcs12_file_that_holds_only_a_key(pki):
    p12 = pkcs12.serialize_key_and_certificates(
        b"key only",
        pki["leaf"].private_key,
        None,
        None,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    result = upload(certificate=p12, passphrase=PASSPHRASE)
    assert result.errors == {FIELD_CERTIFICATE: [PKCS12_NO_CERTIFICATE_MESSAGE]}
    assert result.leaf is None and not result.unreadable


def test_it_reads_an_ec_key_with_the_explicit_parameters_of_a_named_curve():
    key = bundle.private_key_load(vector("asymmetric/EC/secp256r1-explicit-seed.pem"))
    assert key.curve.name == "secp256r1"


def test_it_refuses_a_key_on_a_custom_curve_on_the_key_field(pki):
    custom = vector("asymmetric/EC/explicit_parameters_wap_wsg_idm_ecid_wtls11_private_key.pem")
    result = upload(certificate=pki["leaf"].certificate_pem, private_key=custom)
    assert result.errors == {FIELD_PRIVATE_KEY: [KEY_UNSUPPORTED_MESSAGE]}


def test_it_refuses_a_certificate_whose_ec_key_spells_out_its_curve():
    # cryptography reads the explicit parameters as P-256; browsers refuse the certificate.
    explicit = vector("x509/custom/ec_no_named_curve.pem")
    result = upload(certificate=explicit, now=certificate_pem_facts(explicit.decode()).not_before)
    assert result.leaf.key_curve_explicit and result.leaf.key_curve == "P-256"
    assert EXPLICIT_CURVE_MESSAGE in result.errors[FIELD_CERTIFICATE]


def test_it_only_warns_about_explicit_curve_parameters_for_other_kinds():
    explicit = vector("x509/custom/ec_no_named_curve.pem")
    result = upload(certificate=explicit, kind="apple_payment_processing")
    assert EXPLICIT_CURVE_MESSAGE in result.warnings
    assert EXPLICIT_CURVE_MESSAGE not in result.errors.get(FIELD_CERTIFICATE, [])


def test_it_finds_no_explicit_curve_in_named_curve_and_rsa_certificates(pki, rsa_leaf):
    for issued in (pki["leaf"], pki["intermediate"], rsa_leaf):
        assert not bundle.certificate_facts(issued.certificate).key_curve_explicit


# --------------------------------------------------------------------------- what reading costs
# Key derivations are priced from their parameters before they run, once per upload for all
# fields together; keys are inspected from their DER before they are loaded; only the kept key
# is proven. tests/certificates/test_hostile_upload.py sends the expensive files through the
# views and bounds their CPU time; here each rule is proven on the parser.

HOSTILE = b"pw"


def encrypted_pem(der: bytes) -> bytes:
    return expensive.pem("ENCRYPTED PRIVATE KEY", der)


def test_it_opens_a_key_encrypted_with_openssl_s_default_scrypt(pki):
    key = expensive.der_of(pki["leaf"].private_key)
    encrypted = expensive.scrypt_encrypted_key(key, HOSTILE, n=2**14, r=8, p=1, derive=True)
    result = upload(
        certificate=pki["leaf"].certificate_pem,
        private_key=encrypted_pem(encrypted),
        passphrase="pw",
    )
    assert result.ok, result.errors
    assert result.private_key_pem == pki["leaf"].key_pem.decode()


@pytest.mark.parametrize(
    ("n", "r", "p", "words"),
    [
        (2, 1, 2**22, "p=4,194,304"),  # the 391-byte key: 8 s of CPU, little memory
        (2**20, 8, 1, "1,024 MiB of memory"),
        (2**10, 1, 2**11, "p=2,048"),  # within N·r·p, beyond the lanes
    ],
)
def test_it_refuses_scrypt_beyond_its_budget_on_the_key_field_before_deriving(
    pki, monkeypatch, n, r, p, words
):
    def never(*arguments, **keywords):
        raise AssertionError("scrypt ran")

    monkeypatch.setattr(bundle_pbe, "Scrypt", never)
    key = expensive.der_of(pki["leaf"].private_key)
    encrypted = expensive.scrypt_encrypted_key(key, HOSTILE, n=n, r=r, p=p, derive=False)
    result = upload(
        certificate=pki["leaf"].certificate_pem,
        private_key=encrypted_pem(encrypted),
        passphrase="pw",
    )
    (message,) = result.errors[FIELD_PRIVATE_KEY]
    assert words in message and "more key-derivation work" in message
    assert FIELD_PASSPHRASE not in result.errors


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("asymmetric/PKCS8/enc-unknown-kdf.pem", "key-derivation function other than"),
        ("asymmetric/PKCS8/enc-unknown-pbkdf2-prf.pem", "PBKDF2 with an unusual hash"),
        ("asymmetric/PKCS8/enc-unknown-algorithm.pem", "a cipher other than"),
    ],
)
def test_it_refuses_an_unknown_protection_on_the_key_field_before_decrypting(pki, path, words):
    result = upload(
        certificate=pki["leaf"].certificate_pem, private_key=vector(path), passphrase="password"
    )
    (message,) = result.errors[FIELD_PRIVATE_KEY]
    assert words in message
    assert FIELD_PASSPHRASE not in result.errors


@pytest.mark.parametrize(
    ("path", "password"),
    [
        ("asymmetric/PKCS8/ed25519-scrypt.pem", "hunter42"),
        ("asymmetric/PKCS8/rsa-40bitrc2.pem", "baz"),
        ("asymmetric/PKCS8/rsa-rc2-cbc.pem", "Red Hat Enterprise Linux 7.4"),
        ("asymmetric/PKCS8/rsa-pbewithmd5anddescbc.pem", "hunter2"),
        ("asymmetric/PKCS8/enc-rsa-3des.pem", "password"),
        ("asymmetric/PKCS8/rsa_pkcs8_pbes2_pbkdf2_2048_3des_sha512.pem", "PolarSSLTest"),
        ("asymmetric/PKCS8/pkcs12_s2k_pem-X_9607.pem", "123456"),
        ("asymmetric/Traditional_OpenSSL_Serialization/key1.pem", "123456"),
    ],
)
def test_it_decrypts_the_key_protections_tools_write_as_cryptography_does(path, password):
    data = vector(path)
    expected = serialization.load_pem_private_key(
        data, password.encode(), unsafe_skip_rsa_key_validation=True
    )
    key = private_key_load(data, passphrase=password)
    assert bundle.private_key_pem(key) == bundle.private_key_pem(expected)


def test_it_counts_key_derivation_across_all_fields_of_one_upload(pki):
    # Each key costs 700,000 rounds: two fit in the budget of one upload, the third does not,
    # although it sits in another field.
    leaf = pki["leaf"]
    algorithm, encrypted = expensive.pbkdf2_encrypted(
        expensive.der_of(leaf.private_key), HOSTILE, iterations=700_000, derive=True
    )
    key = encrypted_pem(expensive.encrypted_private_key(algorithm, encrypted))
    result = upload(certificate=leaf.certificate_pem + key * 2, private_key=key, passphrase="pw")
    assert result.errors == {FIELD_PRIVATE_KEY: [UPLOAD_KDF_BUDGET_MESSAGE]}


@pytest.mark.parametrize(
    ("label", "make"),
    [
        ("DSA", lambda generator: expensive.dsa_pkcs8(4096, generator)),
        ("DH", lambda generator: expensive.dh_pkcs8(4096, generator)),
        ("RSA over 8192 bits", lambda generator: expensive.rsa_pkcs8(8200, generator)),
    ],
)
def test_it_refuses_unusable_and_oversized_keys_without_loading_them(pki, monkeypatch, label, make):
    def never(*arguments, **keywords):
        raise AssertionError("the key was loaded")

    monkeypatch.setattr(bundle_keys.serialization, "load_der_private_key", never)
    der = make(random.Random(3))
    encrypted = expensive.encrypted_private_key(
        *expensive.pbkdf2_encrypted(der, HOSTILE, iterations=1, derive=True)
    )
    for data in (der, expensive.pem("PRIVATE KEY", der), encrypted_pem(encrypted)):
        result = upload(certificate=pki["leaf"].certificate_pem, private_key=data, passphrase="pw")
        (message,) = result.errors[FIELD_PRIVATE_KEY]
        assert message in (
            KEY_UNUSABLE_TYPE_MESSAGE,
            RSA_TOO_LARGE_MESSAGE.format(bits=8200, limit=MAX_RSA_BITS),
        )


def test_a_key_in_the_certificate_field_is_told_from_its_structure_never_loaded(monkeypatch):
    def never(*arguments, **keywords):
        raise AssertionError("the key was loaded")

    monkeypatch.setattr(bundle_keys.serialization, "load_der_private_key", never)
    composite = expensive.rsa_private_key(16384, random.Random(5))
    result = upload(certificate=composite)
    assert result.errors == {FIELD_CERTIFICATE: [KEY_NOT_CERTIFICATE_MESSAGE]}


def test_it_proves_only_the_key_it_keeps(pki, rsa_leaf, monkeypatch):
    proven = []
    prove = bundle_check._key_proof_problem
    monkeypatch.setattr(
        bundle_check, "_key_proof_problem", lambda key: proven.append(key) or prove(key)
    )
    result = upload(
        certificate=rsa_leaf.key_pem * 5 + rsa_leaf.certificate_pem,
        private_key=rsa_leaf.key_pem,
    )
    assert result.ok, result.errors
    assert len(proven) == 1


def test_it_refuses_a_certificate_whose_rsa_key_is_over_8192_bits(pki):
    public = rsa.RSAPublicNumbers(
        65537, expensive.odd_without_small_factors(8200, random.Random(9))
    )
    issuer = pki["intermediate"]
    certificate = x509.CertificateBuilder(
        issuer_name=issuer.certificate.subject,
        subject_name=x509.Name.from_rfc4514_string("CN=big.example"),
        public_key=public.public_key(),
        serial_number=x509.random_serial_number(),
        not_valid_before=issuer.certificate.not_valid_before_utc,
        not_valid_after=issuer.certificate.not_valid_after_utc,
    ).sign(issuer.private_key, hashes.SHA256())
    message = CERTIFICATE_RSA_TOO_LARGE_MESSAGE.format(bits=8200, limit=MAX_RSA_BITS)
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert upload(certificate=der).errors == {FIELD_CERTIFICATE: [message]}
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    result = upload(certificate=pki["leaf"].certificate_pem, chain=pem)
    assert result.errors == {FIELD_CHAIN: [f"Block 1 (CERTIFICATE): {message}"]}


# --------------------------------------------------------------------------- PKCS#12, read here


def test_it_opens_a_pkcs12_file_with_40_bit_rc2_certificates_and_a_3des_key():
    # As Keychain Access and OpenSSL 1.x write them (cryptography-vectors, password
    # "cryptography").
    result = upload(
        certificate=vector("pkcs12/cert-rc2-key-3des.p12"), passphrase="cryptography", kind="other"
    )
    assert result.leaf is not None and result.private_key_pem is not None
    assert result.errors == {}


def test_it_refuses_a_pkcs12_integrity_check_too_costly_before_deriving(pki):
    p12 = demo_pki.pkcs12_bundle(leaf=pki["leaf"], chain=[], password=HOSTILE)
    result = upload(certificate=expensive.with_mac_iterations(p12, 2**31 - 1), passphrase="pw")
    (message,) = result.errors[FIELD_CERTIFICATE]
    assert "2,147,483,647 iterations" in message


def pkcs12_hiding(pki, *bags: bytes, password: bytes = HOSTILE) -> bytes:
    """A PKCS#12 file without integrity check whose encrypted content holds the leaf and
    ``bags``: what they declare is seen only once the content is decrypted."""
    certificate = expensive.certificate_bag(pki["leaf"].der)
    return expensive.pfx(expensive.encrypted_bags(certificate, *bags, password=password))


def test_it_opens_a_pkcs12_file_without_integrity_check_with_its_password(pki):
    key = expensive.safe_bag(expensive.KEY_BAG, expensive.der_of(pki["leaf"].private_key))
    p12 = pkcs12_hiding(pki, key)
    result = upload(certificate=p12, passphrase="pw")
    assert result.ok, result.errors
    assert result.private_key_pem == pki["leaf"].key_pem.decode()
    assert upload(certificate=p12, passphrase="wrong").errors == {
        FIELD_PASSPHRASE: [PKCS12_PASSWORD_WRONG_MESSAGE]
    }


def test_it_prices_and_inspects_what_encrypted_pkcs12_content_hides(pki, monkeypatch):
    def never(*arguments, **keywords):
        raise AssertionError("derived or loaded")

    monkeypatch.setattr(bundle_pbe, "Scrypt", never)
    monkeypatch.setattr(bundle_keys.serialization, "load_der_private_key", never)
    key = expensive.der_of(pki["leaf"].private_key)
    scrypt_bag = expensive.safe_bag(
        expensive.SHROUDED_KEY_BAG,
        expensive.scrypt_encrypted_key(key, HOSTILE, n=2, r=1, p=2**22, derive=False),
    )
    dsa_bag = expensive.safe_bag(expensive.KEY_BAG, expensive.dsa_pkcs8(4096, random.Random(1)))
    result = upload(certificate=pkcs12_hiding(pki, scrypt_bag), passphrase="pw")
    assert "p=4,194,304" in result.errors[FIELD_CERTIFICATE][0]
    result = upload(certificate=pkcs12_hiding(pki, dsa_bag), passphrase="pw")
    assert result.errors[FIELD_CERTIFICATE] == [KEY_UNUSABLE_TYPE_MESSAGE]


def test_it_refuses_a_ber_pkcs12_file_in_plain_words(pki):
    p12 = demo_pki.pkcs12_bundle(leaf=pki["leaf"], chain=[], password=HOSTILE)
    # The same content with an indefinite length on the outer SEQUENCE.
    content = expensive.children(p12)
    ber = b"\x30\x80" + b"".join(content) + b"\x00\x00"
    (message,) = upload(certificate=ber, passphrase="pw").errors[FIELD_CERTIFICATE]
    assert "BER encoding" in message
