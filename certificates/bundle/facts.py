"""The facts read from one certificate (names, SANs, serial, fingerprint, key type, size and
curve, signature hash, validity, CA and self-signed flags) and the helpers that describe and
relate certificates: whether one issued another, with a signature check by hand for the hashes
cryptography refuses to verify, and the short labels used in messages.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from .der import _der_children, _tbs_spki
from .results import CertificateFacts

_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
# The content of the OID id-ecPublicKey (1.2.840.10045.2.1).
_EC_PUBLIC_KEY_OID = bytes.fromhex("2a8648ce3d0201")


def certificate_facts(certificate: x509.Certificate) -> CertificateFacts:
    """The facts of one certificate."""
    key_type, key_size, key_curve = _public_key_description(certificate)
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string(),
        common_name=_common_name(certificate.subject),
        sans=_subject_alternative_names(certificate),
        issuer=certificate.issuer.rfc4514_string(),
        serial_number=format(certificate.serial_number, "x"),
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
        key_type=key_type,
        key_size=key_size,
        key_curve=key_curve,
        signature_hash=_signature_hash_name(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=_is_ca(certificate),
        self_signed=_self_signed(certificate),
        key_curve_explicit=_key_curve_explicit(certificate),
    )


def certificate_pem_facts(pem: str) -> CertificateFacts:
    """Facts about one stored PEM certificate; ValueError when it is not one."""
    return certificate_facts(x509.load_pem_x509_certificate(pem.encode("ascii")))


def _common_name(name: x509.Name) -> str:
    """The first common name of ``name``, "" when it has none."""
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return ""
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _subject_alternative_names(certificate: x509.Certificate) -> list[str]:
    """DNS names and IP addresses of the SAN extension, in order."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except ValueError:
        # A malformed extension (including duplicates) is not worth refusing for.
        return []
    names = []
    for general_name in extension.value:
        if isinstance(general_name, x509.DNSName | x509.IPAddress):
            names.append(str(general_name.value))
    return names


def _public_key_description(certificate: x509.Certificate) -> tuple[str, int | None, str]:
    """Key type, size in bits and curve name of the certificate's public key."""
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", None, ""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size, ""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve
        return "EC", curve.key_size, _CURVE_NAMES.get(curve.name, curve.name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", None, ""
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448", None, ""
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size, ""
    return "unknown", None, ""


def _key_curve_explicit(certificate: x509.Certificate) -> bool:
    """True when the certificate's EC key carries explicit curve parameters.

    cryptography reads explicit P-256/384/521 parameters as the named curve, so this looks at
    the encoded SubjectPublicKeyInfo: its algorithm parameters are an OID for a named curve
    and a SEQUENCE when spelled out.
    """
    data = certificate.tbs_certificate_bytes
    spki_value = _tbs_spki(data)
    if spki_value is None:
        return False
    spki = _der_children(data, spki_value, limit=1)
    algorithm = _der_children(data, spki[0], limit=2) if spki else []
    return (
        len(algorithm) == 2
        and data[algorithm[0][1] : algorithm[0][2]] == _EC_PUBLIC_KEY_OID
        and algorithm[1][0] == 0x30
    )


def _signature_hash_name(certificate: x509.Certificate) -> str:
    """The hash of the certificate's signature ("sha256"), "" for EdDSA."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return algorithm.name if algorithm is not None else ""


def _is_ca(certificate: x509.Certificate) -> bool:
    """True when basic constraints say the certificate is a CA."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return extension.value.ca


def _self_signed(certificate: x509.Certificate) -> bool:
    """True when the certificate names and signs itself."""
    return certificate.issuer == certificate.subject and _signed_by(certificate, certificate)


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer`` has the issuer name of ``certificate`` and signed it."""
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # verify_directly_issued_by refuses SHA-1 outright; checking by hand lets
        # the policy refuse such a chain for its hash, with a clear message,
        # instead of calling it broken.
        return _signature_verify_by_hand(certificate, issuer)


def _signature_verify_by_hand(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Check the signature with the issuer's public key and the certificate's hash."""
    signature, data = certificate.signature, certificate.tbs_certificate_bytes
    try:
        public_key = issuer.public_key()
        hash_algorithm = certificate.signature_hash_algorithm
        if isinstance(public_key, rsa.RSAPublicKey) and hash_algorithm is not None:
            signature_padding = certificate.signature_algorithm_parameters
            public_key.verify(signature, data, signature_padding, hash_algorithm)  # type: ignore[arg-type]
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, dsa.DSAPublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, hash_algorithm)
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _label(certificate: x509.Certificate) -> str:
    """A short name for messages: "CN=..." or the whole subject."""
    common_name = _common_name(certificate.subject)
    return f"CN={common_name}" if common_name else certificate.subject.rfc4514_string()


def _facts_label(facts: CertificateFacts) -> str:
    """A short name for messages, from facts."""
    return f"CN={facts.common_name}" if facts.common_name else facts.subject
