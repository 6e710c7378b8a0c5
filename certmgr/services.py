"""Writes of the certificate domain. Views and tasks call these; each runs in one transaction."""

from datetime import datetime

from django.db import transaction

from institutions.models import Institution

from .bundle import BundleResult
from .models import AuditEvent, Certificate
from .notifications import certificate_notify_at


class CertificateInUseError(Exception):
    """Raised when a certificate that a sales channel uses is deleted."""

    def __init__(self, channels):
        self.channels = list(channels)
        names = ", ".join(f"{c.name} ({c.hostname})" for c in self.channels)
        super().__init__(
            f"This certificate is used by {names}; choose another certificate there first."
        )


def audit_record(
    *, institution, actor, action: str, target, details: dict | None = None
) -> AuditEvent:
    """Write one audit event about `target` (a model instance)."""
    return AuditEvent.objects.create(
        institution=institution,
        actor=actor if actor and actor.is_authenticated else None,
        action=action,
        target_type=target._meta.model_name,
        target_id=target.pk,
        target_repr=str(target)[:255],
        details=details or {},
    )


@transaction.atomic
def certificate_upload(
    *,
    institution: Institution,
    name: str,
    kind: str,
    bundle: BundleResult,
    actor,
    expires_at: datetime | None = None,
    content: bytes = b"",
    source: str = Certificate.Source.UPLOADED,
    replaces: Certificate | None = None,
) -> Certificate:
    """Store an uploaded certificate from a checked bundle.

    When the bundle could not be read (bundle.unreadable), `expires_at` is the date the operator
    typed and `content` the file as uploaded; the expiry is then marked manual (unverified).
    """
    certificate = Certificate(
        institution=institution,
        name=name,
        kind=kind,
        source=source,
        replaces=replaces,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    leaf = bundle.leaf
    if leaf is None:
        if expires_at is None:
            raise ValueError("an unreadable certificate needs an expiry date typed by hand")
        certificate.expires_at = expires_at
        certificate.expiry_source = Certificate.ExpirySource.MANUAL
        certificate.content = content
    else:
        certificate.certificate_pem = bundle.certificate_pem
        certificate.subject = leaf.subject
        certificate.common_name = leaf.common_name
        certificate.issuer = leaf.issuer
        certificate.domains = list(leaf.sans)
        certificate.serial_number = leaf.serial_number
        certificate.fingerprint_sha256 = leaf.fingerprint_sha256
        certificate.key_type = leaf.key_type
        certificate.key_size = leaf.key_size
        certificate.key_curve = leaf.key_curve
        certificate.signature_hash = leaf.signature_hash
        certificate.not_before = leaf.not_before
        certificate.not_after = leaf.not_after
        certificate.expires_at = leaf.not_after
        certificate.expiry_source = Certificate.ExpirySource.PARSED
    certificate.chain_pem = bundle.chain_pem
    certificate.warnings = list(bundle.warnings)
    certificate.private_key_set(bundle.private_key_pem)
    certificate.notify_at = certificate_notify_at(certificate)
    certificate.save()
    if replaces is not None:
        # A renewed certificate is warned about in its own right; the old one no longer is.
        Certificate.objects.filter(pk=replaces.pk).update(notify_at=None)
    audit_record(
        institution=institution,
        actor=actor,
        action=AuditEvent.Action.CERTIFICATE_UPLOAD,
        target=certificate,
        details={
            "source": certificate.source,
            "fingerprint_sha256": certificate.fingerprint_sha256,
            "expires_at": certificate.expires_at.isoformat(),
            "expiry_source": certificate.expiry_source,
            "domains": certificate.domains,
        },
    )
    return certificate


@transaction.atomic
def certificate_delete(*, certificate: Certificate, actor) -> None:
    """Delete a certificate unless a sales channel uses it (raises CertificateInUseError)."""
    from saleschannels.models import SalesChannel

    # Lock the row so a concurrent bind cannot slip in between the check and the delete.
    Certificate.objects.select_for_update().filter(pk=certificate.pk).first()
    users = SalesChannel.objects.filter(certificate=certificate) | SalesChannel.objects.filter(
        active_certificate=certificate
    )
    if users.exists():
        raise CertificateInUseError(users.distinct())
    audit_record(
        institution=certificate.institution,
        actor=actor,
        action=AuditEvent.Action.CERTIFICATE_DELETE,
        target=certificate,
        details={"fingerprint_sha256": certificate.fingerprint_sha256},
    )
    certificate.delete()
