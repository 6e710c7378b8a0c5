"""Throwaway PKI material for tests, the ``seed_demo`` command and benchmarks.

Contract:

* Pure module: no Django imports, no disk or network access.
* Every key is generated in memory when a helper is called; no key material
  is stored in the repository.  Nothing here is fit for production use.
* All dates are timezone-aware UTC.  Defaults: valid from one day ago, for
  90 days (leaves) or 10 years (CAs).
* Elliptic-curve keys are the default because they are generated in
  microseconds; RSA is used only when a test asks for it.
* ``hash_algorithm=hashes.SHA1()`` is honoured for RSA and EC signers even
  though ``cryptography`` refuses to build SHA-1 certificates itself (see
  ``_certificate_resign``), so tests can check that SHA-1 is refused.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

KEY_TYPES = ("rsa1024", "rsa2048", "rsa4096", "ec256", "ec384", "ec521", "ed25519", "ed448")
LEAF_LIFETIME = datetime.timedelta(days=90)
CA_LIFETIME = datetime.timedelta(days=3650)
BACKDATE = datetime.timedelta(days=1)
DEMO_ORGANIZATION = "certmgr demo (not for production)"

_EC_CURVES = {"ec256": ec.SECP256R1, "ec384": ec.SECP384R1, "ec521": ec.SECP521R1}

# DER AlgorithmIdentifier values for SHA-1 signatures, which the X.509 builder
# of cryptography no longer produces.
_SHA1_WITH_RSA = bytes.fromhex("300d06092a864886f70d0101050500")
_ECDSA_WITH_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


@dataclass
class Issued:
    """A certificate together with the private key of its subject."""

    certificate: x509.Certificate
    private_key: PrivateKey

    def __repr__(self) -> str:
        # Keep keys out of test failure output and logs.
        return f"Issued({self.certificate.subject.rfc4514_string()!r})"

    @property
    def certificate_pem(self) -> bytes:
        """The certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        """The certificate as DER."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return key_pem(self.private_key)


def utc_now() -> datetime.datetime:
    """The current time, timezone-aware UTC."""
    return datetime.datetime.now(datetime.UTC)


def private_key_generate(key_type: str = "ec256") -> PrivateKey:
    """A fresh private key of ``key_type`` (one of ``KEY_TYPES``)."""
    if key_type.startswith("rsa") and key_type[3:].isdigit():
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type in _EC_CURVES:
        return ec.generate_private_key(_EC_CURVES[key_type]())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(f"Unknown key type {key_type!r}; expected one of {', '.join(KEY_TYPES)}.")


def key_pem(key: PrivateKey, *, fmt: str = "pkcs8", passphrase: bytes | None = None) -> bytes:
    """``key`` as PEM: "pkcs8", or "pkcs1"/"sec1" (OpenSSL traditional, legacy encryption)."""
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
        "sec1": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    if fmt not in formats:
        raise ValueError(f"Unknown key format {fmt!r}; expected one of {', '.join(formats)}.")
    if fmt == "pkcs1" and not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("PKCS#1 is for RSA keys only.")
    if fmt == "sec1" and not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("SEC1 is for EC keys only.")
    return key.private_bytes(serialization.Encoding.PEM, formats[fmt], _encryption(passphrase))


def key_der(key: PrivateKey, *, passphrase: bytes | None = None) -> bytes:
    """``key`` as DER PKCS#8, encrypted when a passphrase is given."""
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, _encryption(passphrase)
    )


def ca_create(
    *,
    common_name: str,
    key_type: str = "ec256",
    issuer: Issued | None = None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    organization: str = DEMO_ORGANIZATION,
) -> Issued:
    """A CA certificate: a self-signed root without ``issuer``, else an intermediate."""
    key = private_key_generate(key_type)
    subject = _name(common_name, organization=organization)
    not_before = not_before or utc_now() - BACKDATE
    builder = (
        _builder_base(
            subject=subject,
            issuer=issuer,
            public_key=key.public_key(),
            not_before=not_before,
            not_after=not_after or not_before + CA_LIFETIME,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    signer = issuer.private_key if issuer else key
    return Issued(_sign(builder, signer=signer, hash_algorithm=hash_algorithm), key)


def leaf_create(
    *,
    issuer: Issued,
    hostnames: list[str],
    key_type: str = "ec256",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    common_name: str | None = None,
    key: PrivateKey | None = None,
) -> Issued:
    """A TLS server certificate for ``hostnames`` (DNS names or IP addresses); for ``key``
    when given (a renewal that keeps its key), else for a new key of ``key_type``."""
    if not hostnames and common_name is None:
        raise ValueError("A leaf certificate needs a hostname or a common name.")
    key = key or private_key_generate(key_type)
    not_before = not_before or utc_now() - BACKDATE
    builder = (
        _builder_base(
            subject=_name(common_name if common_name is not None else hostnames[0]),
            issuer=issuer,
            public_key=key.public_key(),
            not_before=not_before,
            not_after=not_after or not_before + LEAF_LIFETIME,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if hostnames:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(hostname) for hostname in hostnames]),
            critical=False,
        )
    return Issued(_sign(builder, signer=issuer.private_key, hash_algorithm=hash_algorithm), key)


def self_signed_create(
    *,
    hostnames: list[str],
    key_type: str = "ec256",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """A self-signed TLS server certificate (not a CA)."""
    key = private_key_generate(key_type)
    not_before = not_before or utc_now() - BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(hostnames[0]))
        .issuer_name(_name(hostnames[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after or not_before + LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(hostname) for hostname in hostnames]),
            critical=False,
        )
    )
    return Issued(_sign(builder, signer=key, hash_algorithm=None), key)


def ssl_chain_create(
    *,
    hostnames: list[str],
    key_type: str = "ec256",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> tuple[Issued, Issued, Issued]:
    """A root, an intermediate signed by it, and a leaf for ``hostnames``."""
    root = ca_create(common_name="certmgr Demo Root CA")
    intermediate = ca_create(common_name="certmgr Demo Intermediate CA", issuer=root)
    leaf = leaf_create(
        issuer=intermediate,
        hostnames=hostnames,
        key_type=key_type,
        not_before=not_before,
        not_after=not_after,
    )
    return root, intermediate, leaf


def csr_sign(
    *,
    csr_pem: bytes,
    issuer: Issued,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    subject: x509.Name | None = None,
) -> x509.Certificate:
    """The certificate a CA (e.g. a stand-in for Apple's) issues for a CSR: the request's
    public key and subject (or ``subject``), signed by ``issuer``."""
    request = x509.load_pem_x509_csr(csr_pem)
    if not request.is_signature_valid:
        raise ValueError("The CSR's signature does not verify.")
    not_before = not_before or utc_now() - BACKDATE
    builder = _builder_base(
        subject=subject or request.subject,
        issuer=issuer,
        public_key=request.public_key(),
        not_before=not_before,
        not_after=not_after or not_before + LEAF_LIFETIME,
    ).add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    return _sign(builder, signer=issuer.private_key, hash_algorithm=None)


def pkcs12_bundle(
    *,
    leaf: Issued,
    chain: list[Issued],
    password: bytes | None,
    friendly_name: bytes = b"certmgr",
) -> bytes:
    """A PKCS#12 (.p12/.pfx) file holding the leaf, its key and ``chain``."""
    return pkcs12.serialize_key_and_certificates(
        friendly_name,
        leaf.private_key,
        leaf.certificate,
        [issued.certificate for issued in chain] or None,
        _encryption(password),
    )


def pem_join(*parts: bytes | Issued) -> bytes:
    """PEM parts concatenated; an ``Issued`` contributes its certificate."""
    return b"".join(part.certificate_pem if isinstance(part, Issued) else part for part in parts)


def _encryption(passphrase: bytes | None) -> serialization.KeySerializationEncryption:
    """Best available encryption for a passphrase, none without one."""
    if passphrase:
        return serialization.BestAvailableEncryption(passphrase)
    return serialization.NoEncryption()


def _name(common_name: str, *, organization: str = DEMO_ORGANIZATION) -> x509.Name:
    """A subject name with the demo organization (or `organization`) and ``common_name``."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _general_name(hostname: str) -> x509.GeneralName:
    """An IP address SAN for an address, else a DNS name SAN."""
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        return x509.DNSName(hostname)


def _builder_base(
    *,
    subject: x509.Name,
    issuer: Issued | None,
    public_key: object,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.CertificateBuilder:
    """A builder with names, validity and key identifiers filled in."""
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)  # type: ignore[arg-type]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(ski, critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.certificate.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    return builder


def _sign(
    builder: x509.CertificateBuilder,
    *,
    signer: PrivateKey,
    hash_algorithm: hashes.HashAlgorithm | None,
) -> x509.Certificate:
    """Sign ``builder``; EdDSA takes no hash, SHA-1 goes through re-signing."""
    if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        if hash_algorithm is not None:
            raise ValueError("EdDSA keys sign without a separate hash algorithm.")
        return builder.sign(signer, None)
    if isinstance(hash_algorithm, hashes.SHA1):
        return _certificate_resign_sha1(builder.sign(signer, hashes.SHA256()), signer=signer)
    return builder.sign(signer, hash_algorithm or hashes.SHA256())


def _certificate_resign_sha1(
    certificate: x509.Certificate, *, signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """The same certificate signed with SHA-1 (rebuilt at the DER level)."""
    if isinstance(signer, rsa.RSAPrivateKey):
        algorithm = _SHA1_WITH_RSA
    elif isinstance(signer, ec.EllipticCurvePrivateKey):
        algorithm = _ECDSA_WITH_SHA1
    else:
        raise ValueError("SHA-1 signatures are supported for RSA and EC signers only.")
    # TBSCertificate ::= SEQUENCE { [0] version, serialNumber, signature AlgorithmIdentifier, ... }
    tbs_elements = _der_children(certificate.tbs_certificate_bytes)
    tbs_elements[2] = algorithm
    tbs = _der_encode(0x30, b"".join(tbs_elements))
    # SHA-1 on purpose: these certificates exist to check that SHA-1 is refused.
    if isinstance(signer, rsa.RSAPrivateKey):
        signature = signer.sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    else:
        signature = signer.sign(tbs, ec.ECDSA(hashes.SHA1()))  # noqa: S303
    # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
    der = _der_encode(0x30, tbs + algorithm + _der_encode(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _der_children(der: bytes) -> list[bytes]:
    """The encoded elements inside the outer DER constructed value."""
    content_start, content_end = _der_header(der, 0)
    children = []
    offset = content_start
    while offset < content_end:
        child_start, child_end = _der_header(der, offset)
        children.append(der[offset:child_end])
        offset = child_end
    return children


def _der_header(der: bytes, offset: int) -> tuple[int, int]:
    """Start and end of the content of the DER value at ``offset``."""
    length = der[offset + 1]
    start = offset + 2
    if length & 0x80:
        length_bytes = length & 0x7F
        length = int.from_bytes(der[start : start + length_bytes], "big")
        start += length_bytes
    return start, start + length


def _der_encode(tag: int, content: bytes) -> bytes:
    """A DER value with a single-byte ``tag``."""
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    length_bytes = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length_bytes)]) + length_bytes + content
