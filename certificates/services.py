"""Writes of the certificate domain. Views and tasks call these; each runs in one transaction.

Each write records its audit row and logs one line (core.audit.audit; logger
"certificates.services") whose `extra` fields name the
event and the ids involved, so that LOG_FORMAT=json carries them as fields. Never key material.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.audit import actor_user, audit
from core.models import AuditEvent
from institutions.models import Institution

from . import apple
from .bundle import BundleResult, private_key_pem
from .deletion import certificate_deletion, in_use_message, proof_served_message
from .models import Certificate, CertificateRequest
from .threshold_store import certificate_thresholds_drop, certificate_thresholds_store

logger = logging.getLogger(__name__)


class CertificateInUseError(Exception):
    """Raised when a certificate that a sales channel uses is deleted."""

    def __init__(self, channels):
        self.channels = list(channels)
        super().__init__(in_use_message(self.channels))


class IdentityProofServedError(Exception):
    """Raised when an identity proof that channels serve by default is deleted while no other
    valid proof would take over there."""

    def __init__(self, hostnames):
        self.hostnames = list(hostnames)
        super().__init__(proof_served_message(self.hostnames))


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
    merchant_identifier: str = "",
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
        merchant_identifier=merchant_identifier,
        created_by=actor_user(actor),
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
    certificate.save()
    now = timezone.now()
    certificate_thresholds_store(certificate, now=now)
    if replaces is not None:
        # A renewed certificate is warned about in its own right; the old one no longer is.
        certificate_thresholds_drop(replaces)
    audit(
        logger,
        "certificate_uploaded",
        "certificate {certificate_id} stored for institution {institution_id} ({kind}, {source}),"
        " expires {expires_at}",
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
            **({"merchant_identifier": merchant_identifier} if merchant_identifier else {}),
            **({"replaces": replaces.pk} if replaces is not None else {}),
        },
        certificate_id=certificate.pk,
        institution_id=institution.pk,
        kind=certificate.kind,
        source=certificate.source,
        has_private_key=certificate.has_private_key,
        expires_at=certificate.expires_at.isoformat(),
        expiry_source=certificate.expiry_source,
        fingerprint_sha256=certificate.fingerprint_sha256,
        replaces_id=replaces.pk if replaces is not None else None,
    )
    return certificate


def identity_proof_upload(
    *, institution: Institution, name: str, content: bytes, expires_at: datetime, actor
) -> Certificate:
    """Store an Apple Pay domain-association file exactly as uploaded, with its typed expiry
    (it is not X.509, so the expiry is manual); the form has refused keys and certificates."""
    return certificate_upload(
        institution=institution,
        name=name,
        kind=Certificate.Kind.APPLE_IDENTITY_PROOF,
        bundle=BundleResult(unreadable=True),
        actor=actor,
        expires_at=expires_at,
        content=content,
    )


def payment_processing_predecessor(
    *, institution: Institution, merchant_identifier: str
) -> Certificate | None:
    """The payment processing certificate a new one for this merchant would replace: the
    newest of the institution's for the merchant that no other replaces yet.

    The active certificate of a merchant is that one while it has not expired ("only one is
    active per merchant identifier": each new one replaces the previous).
    """
    return (
        Certificate.objects.filter(
            institution=institution,
            kind=Certificate.Kind.APPLE_PAYMENT_PROCESSING,
            merchant_identifier=merchant_identifier,
        )
        .exclude(Exists(Certificate.objects.filter(replaces=OuterRef("pk"))))
        .defer("content")
        .order_by("-created_at", "-pk")
        .first()
    )


@transaction.atomic
def apple_certificate_store(
    *,
    institution: Institution,
    name: str,
    kind: str,
    merchant_identifier: str,
    bundle: BundleResult,
    actor,
    now: datetime | None = None,
) -> Certificate:
    """Store an Apple Pay merchant identity or payment processing certificate (checked).

    A payment processing certificate that is valid now becomes the merchant's active one: it
    `replaces` the previous (which is then no longer warned about). An expired one uploaded
    for the record replaces nothing.
    """
    if kind not in apple.KEY_REQUIREMENTS:
        raise ValueError(f"not an Apple Pay certificate kind: {kind!r}")
    now = now or timezone.now()
    replaces = None
    if (
        kind == Certificate.Kind.APPLE_PAYMENT_PROCESSING
        and bundle.leaf is not None
        and bundle.leaf.not_after > now
    ):
        # Two uploads for one merchant at once must not both replace the same certificate:
        # they take turns on the institution's row, and each then reads what is committed.
        Institution.objects.select_for_update().filter(pk=institution.pk).first()
        replaces = payment_processing_predecessor(
            institution=institution, merchant_identifier=merchant_identifier
        )
    return certificate_upload(
        institution=institution,
        name=name,
        kind=kind,
        bundle=bundle,
        actor=actor,
        replaces=replaces,
        merchant_identifier=merchant_identifier,
    )


@transaction.atomic
def certificate_request_create(
    *, institution: Institution, kind: str, merchant_identifier: str, name: str, actor
) -> CertificateRequest:
    """Create the key Apple requires for `kind` and the CSR for it, and keep both (the key
    encrypted) until Apple's certificate is uploaded (certificate_request_complete)."""
    key = apple.request_key_generate(kind)
    email = getattr(actor, "email", "") if actor is not None else ""
    request = CertificateRequest(
        institution=institution,
        kind=kind,
        name=name,
        merchant_identifier=merchant_identifier,
        csr_pem=apple.csr_create(key=key, merchant_identifier=merchant_identifier, email=email),
        created_by=actor_user(actor),
    )
    request.private_key_set(private_key_pem(key))
    request.save()
    audit(
        logger,
        "certificate_request_created",
        "certificate request {request_id} created for institution {institution_id} ({kind},"
        " {merchant_identifier})",
        institution=institution,
        actor=actor,
        action=AuditEvent.Action.REQUEST_CREATE,
        target=request,
        details={"kind": kind, "merchant_identifier": merchant_identifier},
        request_id=request.pk,
        institution_id=institution.pk,
        kind=kind,
        merchant_identifier=merchant_identifier,
    )
    return request


class RequestCompletedError(Exception):
    """Raised when Apple's certificate is uploaded for a request that is already completed."""


@transaction.atomic
def certificate_request_complete(
    *, request: CertificateRequest, bundle: BundleResult, actor, now: datetime | None = None
) -> Certificate:
    """Store Apple's certificate for a pending request (the form has checked that it is for
    the request's key) with that key, and complete the request. The request's own copy of
    the key is dropped: the certificate holds it now."""
    locked = CertificateRequest.objects.select_for_update().get(pk=request.pk)
    if not locked.is_pending:
        raise RequestCompletedError("A certificate was already uploaded for this request.")
    certificate = apple_certificate_store(
        institution=locked.institution,
        name=locked.name,
        kind=locked.kind,
        merchant_identifier=locked.merchant_identifier,
        bundle=bundle,
        actor=actor,
        now=now,
    )
    locked.certificate = certificate
    locked.completed_at = timezone.now()
    locked.private_key_set(None)
    locked.save(update_fields=["certificate", "completed_at", "private_key_encrypted"])
    audit(
        logger,
        "certificate_request_completed",
        "certificate request {request_id} completed with certificate {certificate_id}",
        institution=locked.institution,
        actor=actor,
        action=AuditEvent.Action.REQUEST_COMPLETE,
        target=locked,
        details={"certificate": certificate.pk, "expires_at": certificate.expires_at.isoformat()},
        request_id=locked.pk,
        certificate_id=certificate.pk,
        institution_id=locked.institution_id,
    )
    return certificate


@transaction.atomic
def certificate_request_delete(*, request: CertificateRequest, actor) -> None:
    """Delete a pending request and its key (a CSR that will not be used). A completed one is
    kept as the record of its certificate (RequestCompletedError): taking turns with
    certificate_request_complete on the row, a delete never takes a request just completed."""
    locked = CertificateRequest.objects.select_for_update().filter(pk=request.pk).first()
    if locked is None:
        return  # deleted meanwhile: what was asked is done
    if not locked.is_pending:
        raise RequestCompletedError("This request is completed; delete its certificate instead.")
    audit(
        logger,
        "certificate_request_deleted",
        "certificate request {request_id} of institution {institution_id} deleted",
        institution=request.institution,
        actor=actor,
        action=AuditEvent.Action.REQUEST_DELETE,
        target=request,
        details={"kind": request.kind, "merchant_identifier": request.merchant_identifier},
        request_id=request.pk,
        institution_id=request.institution_id,
    )
    request.delete()


@transaction.atomic
def certificate_delete(*, certificate: Certificate, actor, now: datetime | None = None) -> None:
    """Delete a certificate unless a sales channel uses it (CertificateInUseError), or, for an
    identity proof that channels serve as the institution's latest valid one, unless another
    valid proof takes over there (IdentityProofServedError); see deletion.py."""
    now = now or timezone.now()
    if certificate.kind == Certificate.Kind.APPLE_IDENTITY_PROOF:
        # Two proofs of an institution deleted at once must not each count on the other to
        # take over: proof deletions take turns on the institution's row.
        Institution.objects.select_for_update().filter(pk=certificate.institution_id).first()
    # Lock the row so a concurrent bind cannot slip in between the check and the delete.
    Certificate.objects.select_for_update().filter(pk=certificate.pk).first()
    deletion = certificate_deletion(certificate, now)
    if deletion.used_by:
        raise CertificateInUseError(deletion.used_by)
    if deletion.refusal:
        raise IdentityProofServedError(deletion.apple_pay_hostnames)
    successor = deletion.successor
    audit(
        logger,
        "certificate_deleted",
        "certificate {certificate_id} of institution {institution_id} deleted",
        institution=certificate.institution,
        actor=actor,
        action=AuditEvent.Action.CERTIFICATE_DELETE,
        target=certificate,
        details={
            "kind": certificate.kind,
            "fingerprint_sha256": certificate.fingerprint_sha256,
            "expires_at": certificate.expires_at.isoformat(),
            **(
                {
                    "apple_pay_hostnames": deletion.apple_pay_hostnames,
                    "identity_proof_taking_over": successor.pk,
                }
                if successor is not None
                else {}
            ),
        },
        certificate_id=certificate.pk,
        institution_id=certificate.institution_id,
        kind=certificate.kind,
        identity_proof_taking_over_id=successor.pk if successor is not None else None,
    )
    certificate.delete()
