"""Writes of the certificate domain. Views and tasks call these; each runs in one transaction.

Each significant write logs one line (logger "certmgr.services") whose `extra` fields name the
event and the ids involved, so that LOG_FORMAT=json carries them as fields. Never key material.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from institutions.models import Institution

from . import apple, encryption
from .bundle import BundleResult, private_key_pem
from .models import AuditEvent, Certificate, CertificateRequest
from .notifications import certificate_thresholds_drop, certificate_thresholds_store

logger = logging.getLogger(__name__)


def event_log(
    log: logging.Logger, event: str, message: str, *, shown: dict | None = None, **fields
) -> None:
    """Log one significant event, once the current transaction commits (at once outside one),
    so that a rolled-back write is never reported: `event` and `fields` (certificate_id,
    channel_id, institution_id, order_id...) as fields for JSON logs, and `message` for
    people, a str.format template over the fields and `shown` (words for people only, e.g.
    "on"/"off"). Never pass key material, passphrases or tokens."""
    text = message.format_map({**fields, **(shown or {})})
    extra = {"event": event, **fields}
    transaction.on_commit(lambda: log.info(text, extra=extra))


def _actor_id(actor) -> int | None:
    return actor.pk if actor is not None and actor.is_authenticated else None


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
    certificate.save()
    now = timezone.now()
    certificate_thresholds_store(certificate, now=now)
    if replaces is not None:
        # A renewed certificate is warned about in its own right; the old one no longer is.
        certificate_thresholds_drop(replaces)
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
            **({"merchant_identifier": merchant_identifier} if merchant_identifier else {}),
            **({"replaces": replaces.pk} if replaces is not None else {}),
        },
    )
    event_log(
        logger,
        "certificate_uploaded",
        "certificate {certificate_id} stored for institution {institution_id} ({kind}, {source}),"
        " expires {expires_at}",
        certificate_id=certificate.pk,
        institution_id=institution.pk,
        kind=certificate.kind,
        source=certificate.source,
        has_private_key=certificate.has_private_key,
        expires_at=certificate.expires_at.isoformat(),
        expiry_source=certificate.expiry_source,
        fingerprint_sha256=certificate.fingerprint_sha256,
        replaces_id=replaces.pk if replaces is not None else None,
        actor_id=_actor_id(actor),
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
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    request.private_key_set(private_key_pem(key))
    request.save()
    audit_record(
        institution=institution,
        actor=actor,
        action=AuditEvent.Action.REQUEST_CREATE,
        target=request,
        details={"kind": kind, "merchant_identifier": merchant_identifier},
    )
    event_log(
        logger,
        "certificate_request_created",
        "certificate request {request_id} created for institution {institution_id} ({kind},"
        " {merchant_identifier})",
        request_id=request.pk,
        institution_id=institution.pk,
        kind=kind,
        merchant_identifier=merchant_identifier,
        actor_id=_actor_id(actor),
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
    audit_record(
        institution=locked.institution,
        actor=actor,
        action=AuditEvent.Action.REQUEST_COMPLETE,
        target=locked,
        details={"certificate": certificate.pk, "expires_at": certificate.expires_at.isoformat()},
    )
    event_log(
        logger,
        "certificate_request_completed",
        "certificate request {request_id} completed with certificate {certificate_id}",
        request_id=locked.pk,
        certificate_id=certificate.pk,
        institution_id=locked.institution_id,
        actor_id=_actor_id(actor),
    )
    return certificate


@transaction.atomic
def certificate_request_delete(*, request: CertificateRequest, actor) -> None:
    """Delete a request and its key (a CSR that will not be used)."""
    audit_record(
        institution=request.institution,
        actor=actor,
        action=AuditEvent.Action.REQUEST_DELETE,
        target=request,
        details={"kind": request.kind, "merchant_identifier": request.merchant_identifier},
    )
    request.delete()


@transaction.atomic
def certificate_delete(*, certificate: Certificate, actor) -> None:
    """Delete a certificate unless a sales channel uses it (raises CertificateInUseError)."""
    from saleschannels.models import SalesChannel

    # Lock the row so a concurrent bind cannot slip in between the check and the delete.
    Certificate.objects.select_for_update().filter(pk=certificate.pk).first()
    users = (
        SalesChannel.objects.filter(certificate=certificate)
        | SalesChannel.objects.filter(active_certificate=certificate)
        | SalesChannel.objects.filter(apple_identity_proof=certificate)
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
    event_log(
        logger,
        "certificate_deleted",
        "certificate {certificate_id} of institution {institution_id} deleted",
        certificate_id=certificate.pk,
        institution_id=certificate.institution_id,
        actor_id=_actor_id(actor),
    )
    certificate.delete()


# Rotation of the encryption keys (manage.py rotate_encryption_keys).

ROTATION_BATCH_SIZE = 500
# Session engines whose sessions live in the django_session table.
_DATABASE_SESSION_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)


def _encrypted_columns() -> list[tuple[type, str]]:
    """Every column holding a Fernet token (an empty string means no value)."""
    from acme_client.models import AcmeAccount

    return [
        (Certificate, "private_key_encrypted"),
        (CertificateRequest, "private_key_encrypted"),
        (AcmeAccount, "key_encrypted"),
    ]


@dataclass
class ColumnRotation:
    """What rotation found (or, with dry_run, would do) in one encrypted column."""

    label: str  # "table.column"
    values: int = 0
    current: int = 0  # already under the first key
    rotated: int = 0  # re-encrypted (or, with dry_run, to be re-encrypted)


@dataclass
class KeyRotationReport:
    columns: list[ColumnRotation] = field(default_factory=list)
    # (label, pk) of each value that no configured key decrypts; never the value itself.
    undecryptable: list[tuple[str, object]] = field(default_factory=list)
    session_drafts_rotated: int = 0
    session_drafts_dropped: int = 0
    sessions_checked: bool = False


class EncryptionKeysMissing(Exception):
    """Some stored values are encrypted under no configured key: rotation refused."""

    def __init__(self, report: KeyRotationReport):
        self.report = report
        super().__init__(
            f"{len(report.undecryptable)} stored value(s) cannot be decrypted with any key of "
            "CERTMGR_ENCRYPTION_KEYS"
        )


def _column_batches(model, column: str, batch_size: int):
    """(pk, token) of the non-empty values of a column, `batch_size` rows at a time by pk,
    so that memory stays bounded and each batch reads what is committed now."""
    last_pk = None
    while True:
        rows = model.objects.exclude(**{column: ""}).order_by("pk")
        if last_pk is not None:
            rows = rows.filter(pk__gt=last_pk)
        batch = list(rows.values_list("pk", column)[:batch_size])
        if not batch:
            return
        yield batch
        last_pk = batch[-1][0]


def _column_pass(model, column: str, *, batch_size: int, report: KeyRotationReport, write: bool):
    """Count the column's values under the first key, under older ones, and under none (noted
    in the report); with `write`, re-encrypt those under older keys, one transaction per batch.

    Each row is written only if it still holds the token read (a conditional update): a
    value changed meanwhile by the application is left as the application wrote it.
    """
    result = ColumnRotation(label=f"{model._meta.db_table}.{column}")
    for batch in _column_batches(model, column, batch_size):
        with transaction.atomic():
            for pk, token in batch:
                result.values += 1
                try:
                    if encryption.token_is_current(token):  # signatures only: cheap
                        result.current += 1
                        continue
                    rotated = encryption.token_rotate(token) if write else None
                except InvalidToken:
                    report.undecryptable.append((result.label, pk))
                    continue
                if rotated is None:  # counting only
                    result.rotated += 1
                    continue
                result.rotated += model.objects.filter(pk=pk, **{column: token}).update(
                    **{column: rotated}
                )
    report.columns.append(result)


def _session_drafts_rotate(*, batch_size: int, dry_run: bool, report: KeyRotationReport):
    """Re-encrypt the upload drafts kept in database sessions (the files of an upload that
    asked for its expiry date, encrypted like keys since they may hold one).

    A draft no configured key decrypts is removed from its session rather than refused: the
    upload page already ignores such a draft (the operator chooses the files again), and
    leaving it would keep ciphertext under a retired key in the database.
    """
    if settings.SESSION_ENGINE not in _DATABASE_SESSION_ENGINES:
        return  # sessions are not in the database: nothing of them is in a dump
    from django.contrib.sessions.models import Session
    from django.core.cache import caches

    from .views import UPLOAD_DRAFT_SESSION_KEY

    report.sessions_checked = True
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    last_key = None
    while True:
        rows = Session.objects.order_by("pk")
        if last_key is not None:
            rows = rows.filter(pk__gt=last_key)
        batch = list(rows.values_list("pk", "session_data")[:batch_size])
        if not batch:
            return
        last_key = batch[-1][0]
        for session_key, session_data in batch:
            data = store_class().decode(session_data)  # {} when it does not verify
            token = data.get(UPLOAD_DRAFT_SESSION_KEY)
            if not token:
                continue
            try:
                rotated = encryption.token_rotate(token)
            except InvalidToken:
                rotated = ""
            if rotated is None:
                continue
            if rotated:
                report.session_drafts_rotated += 1
                data[UPLOAD_DRAFT_SESSION_KEY] = rotated
            else:
                report.session_drafts_dropped += 1
                del data[UPLOAD_DRAFT_SESSION_KEY]
            if dry_run:
                continue
            Session.objects.filter(pk=session_key, session_data=session_data).update(
                session_data=store_class().encode(data)
            )
            if hasattr(store_class, "cache_key_prefix"):  # cached_db: forget the old copy
                caches[settings.SESSION_CACHE_ALIAS].delete(
                    store_class.cache_key_prefix + session_key
                )


def encryption_keys_rotate(
    *, dry_run: bool = False, batch_size: int = ROTATION_BATCH_SIZE
) -> KeyRotationReport:
    """Re-encrypt every stored encrypted value under the first key of CERTMGR_ENCRYPTION_KEYS.

    First every value is checked (signatures only): when any is under no configured key,
    nothing is changed and EncryptionKeysMissing names each (table.column, pk). Then each
    column is rotated in batches of `batch_size` rows, one transaction per batch. Values
    already under the first key are left alone, so an interrupted run is simply run again
    and a second run changes nothing. With dry_run, only the check runs and the report
    counts what would be re-encrypted.
    """
    checked = KeyRotationReport()
    for model, column in _encrypted_columns():
        _column_pass(model, column, batch_size=batch_size, report=checked, write=False)
    if checked.undecryptable:
        raise EncryptionKeysMissing(checked)
    if dry_run:
        _session_drafts_rotate(batch_size=batch_size, dry_run=True, report=checked)
        return checked

    report = KeyRotationReport()
    for model, column in _encrypted_columns():
        _column_pass(model, column, batch_size=batch_size, report=report, write=True)
    _session_drafts_rotate(batch_size=batch_size, dry_run=False, report=report)
    if report.undecryptable:  # written meanwhile by a process configured with other keys
        raise EncryptionKeysMissing(report)
    logger.info(
        "encryption keys rotated: %s values re-encrypted",
        sum(column.rotated for column in report.columns),
        extra={
            "event": "encryption_keys_rotated",
            "rotated": sum(column.rotated for column in report.columns),
        },
    )
    return report
