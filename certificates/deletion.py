"""What deleting a certificate or a key-and-CSR request would do, read before it is done: the
confirmation page names it (core.confirmation), and the delete service reads it again under
lock and refuses what it refuses.

- A certificate a sales channel uses (chosen in uploaded mode, deployed, or named as its
  Apple Pay identity proof) is not deleted: the operator chooses another there first.
- An identity proof that channels serve because it is their institution's latest valid one
  (they name none) is deleted only when another valid proof takes over on those hostnames,
  and the page says which; with none to take over, Apple Pay's file there would answer 404.
- A pending key-and-CSR request takes its key with it: Apple's certificate for that CSR can
  no longer be uploaded.
"""

from dataclasses import dataclass
from datetime import datetime

from core.confirmation import impact_token

from .models import Certificate, CertificateRequest
from .selectors import certificate_channels_using, identity_proof_served_on, identity_proofs_valid


def in_use_message(channels) -> str:
    names = ", ".join(f"{channel.name} ({channel.hostname})" for channel in channels)
    return f"This certificate is used by {names}; choose another certificate there first."


def proof_served_message(hostnames) -> str:
    return (
        f"This identity proof is the Apple Pay file of {', '.join(hostnames)}, and no other "
        "valid identity proof would take over: Apple Pay would stop working there. Upload the "
        "new file first, or turn Apple Pay off on those sales channels."
    )


@dataclass(frozen=True)
class CertificateDeletion:
    """What deleting `certificate` would do now."""

    certificate: Certificate
    # Channels that use it: they keep it from being deleted.
    used_by: list
    # Identity proof: the hostnames that serve it as their Apple Pay file because it is the
    # institution's latest valid proof, and the proof that would take over there (or None).
    apple_pay_hostnames: list[str]
    successor: Certificate | None

    @property
    def refusal(self) -> str:
        """Why it cannot be deleted, or "" when it can."""
        if self.used_by:
            return in_use_message(self.used_by)
        if self.apple_pay_hostnames and self.successor is None:
            return proof_served_message(self.apple_pay_hostnames)
        return ""

    @property
    def token(self) -> str:
        return impact_token(
            "certificate",
            self.certificate.pk,
            *(channel.pk for channel in self.used_by),
            *self.apple_pay_hostnames,
            self.successor.pk if self.successor is not None else "",
        )


def certificate_deletion(certificate: Certificate, now: datetime) -> CertificateDeletion:
    """What deleting `certificate` would do at `now` (a few queries)."""
    hostnames, successor = [], None
    if certificate.kind == Certificate.Kind.APPLE_IDENTITY_PROOF:
        hostnames = sorted(
            channel.hostname
            for channel in identity_proof_served_on(certificate, now)
            if channel.apple_identity_proof_id is None  # those naming it are in used_by
        )
        if hostnames:
            successor = (
                identity_proofs_valid(certificate.institution_id, now)
                .exclude(pk=certificate.pk)
                .defer("content")
                .first()
            )
    return CertificateDeletion(
        certificate=certificate,
        used_by=certificate_channels_using(certificate),
        apple_pay_hostnames=hostnames,
        successor=successor,
    )


def request_deletion_token(request: CertificateRequest) -> str:
    """The confirmation token of deleting a pending key-and-CSR request."""
    return impact_token("certificate_request", request.pk, request.merchant_identifier)
