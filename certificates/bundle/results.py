"""What the parser hands back and the records it fills while reading: ``BundleResult`` (what was
found and what is wrong, keyed by field), ``CertificateFacts`` (what the interface shows and
stores about one certificate), ``BundleError`` (what ``private_key_load`` raises), the
``PrivateKey`` type, ``_FieldContent`` (the certificates and keys found in one field) with
``_errors_add_capped``, which keeps a hostile file from filling a field with near-identical
messages, and ``_KdfBudget``, the key-derivation work one upload may still cause.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from .messages import MAX_FIELD_MESSAGES, MAX_UPLOAD_KDF_ROUNDS

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


class BundleError(ValueError):
    """A problem with an uploaded file, attached to the form field it concerns."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class CertificateFacts:
    """What the interface shows and stores about one certificate."""

    subject: str
    common_name: str
    sans: list[str]
    issuer: str
    serial_number: str
    fingerprint_sha256: str
    key_type: str
    key_size: int | None
    key_curve: str
    signature_hash: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    is_ca: bool
    self_signed: bool
    # The EC public key spells its curve out instead of naming it (RFC 5480 forbids it).
    key_curve_explicit: bool = False

    @property
    def key_description(self) -> str:
        """The key in a few words: "RSA 2048", "EC P-256", "Ed25519"."""
        if self.key_type == "EC":
            return f"EC {self.key_curve}"
        if self.key_size is not None:
            return f"{self.key_type} {self.key_size}"
        return self.key_type


@dataclass
class BundleResult:
    """The outcome of reading an upload: what was found and what is wrong with it."""

    leaf: CertificateFacts | None = None
    chain: list[CertificateFacts] = field(default_factory=list)
    certificate_pem: str = ""
    chain_pem: str = ""
    private_key_pem: str | None = field(default=None, repr=False)
    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    unreadable: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing was refused."""
        return not self.errors

    def error_add(self, field_name: str, message: str) -> None:
        """Record ``message`` against ``field_name`` once."""
        messages = self.errors.setdefault(field_name, [])
        if message not in messages:
            messages.append(message)

    def warning_add(self, message: str) -> None:
        """Record a warning once."""
        if message not in self.warnings:
            self.warnings.append(message)

    def as_dict(self) -> dict:
        """Plain JSON-ready values (dates as ISO text), the private key included: for a draft
        kept encrypted between two requests, so that its files need not be read again."""
        return {
            "leaf": _facts_as_dict(self.leaf) if self.leaf else None,
            "chain": [_facts_as_dict(facts) for facts in self.chain],
            "certificate_pem": self.certificate_pem,
            "chain_pem": self.chain_pem,
            "private_key_pem": self.private_key_pem,
            "errors": self.errors,
            "warnings": self.warnings,
            "unreadable": self.unreadable,
        }

    @classmethod
    def from_dict(cls, values: dict) -> BundleResult:
        """The result ``as_dict`` wrote; ValueError, KeyError or TypeError when it is not one."""
        return cls(
            leaf=_facts_from_dict(values["leaf"]) if values["leaf"] else None,
            chain=[_facts_from_dict(facts) for facts in values["chain"]],
            certificate_pem=str(values["certificate_pem"]),
            chain_pem=str(values["chain_pem"]),
            private_key_pem=values["private_key_pem"],
            errors={str(name): list(messages) for name, messages in values["errors"].items()},
            warnings=list(values["warnings"]),
            unreadable=bool(values["unreadable"]),
        )


_FACTS_DATES = ("not_before", "not_after")


def _facts_as_dict(facts: CertificateFacts) -> dict:
    values = asdict(facts)
    for name in _FACTS_DATES:
        values[name] = values[name].isoformat()
    return values


def _facts_from_dict(values: dict) -> CertificateFacts:
    values = dict(values)
    for name in _FACTS_DATES:
        values[name] = datetime.datetime.fromisoformat(values[name])
    return CertificateFacts(**values)


@dataclass
class _FieldContent:
    """The certificates and keys found in one upload field."""

    field_name: str
    certificates: list[x509.Certificate] = field(default_factory=list)
    keys: list[PrivateKey] = field(default_factory=list)
    is_pkcs12: bool = False
    csr_found: bool = False
    # Something was recognised but could not be opened (and was reported).
    problems: bool = False
    # A well-formed certificate was refused for what it holds (an RSA key too large): the
    # field is not "unreadable", whose certificate could be kept with a typed expiry date.
    certificate_refused: bool = False
    damage: list[str] = field(default_factory=list)


def _errors_add_capped(
    result: BundleResult, field_name: str, messages: list[str], *, more: str
) -> None:
    """Record the first few distinct ``messages``; the rest are only counted."""
    distinct = list(dict.fromkeys(messages))
    for message in distinct[:MAX_FIELD_MESSAGES]:
        result.error_add(field_name, message)
    if len(distinct) > MAX_FIELD_MESSAGES:
        result.error_add(field_name, more.format(count=len(distinct) - MAX_FIELD_MESSAGES))


@dataclass
class _KdfBudget:
    """The key-derivation work (in rounds, see ``messages``) one upload may still cause.

    One budget is passed down the reading of every field and block of an upload, so that many
    encrypted keys in one file, or in several fields, cannot multiply the work of one.
    """

    remaining: int = MAX_UPLOAD_KDF_ROUNDS
    spent: int = 0
    derivations: int = 0

    def spend(self, rounds: int) -> bool:
        """Take ``rounds`` from the budget; False (and nothing taken) when they do not fit."""
        if rounds > self.remaining:
            return False
        self.remaining -= rounds
        self.spent += rounds
        self.derivations += 1
        return True
