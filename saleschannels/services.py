"""Writes of the sales-channel domain: create, change, delete, SSL management, Apple Pay.

Each write commits its database change first and then brings the channel's files on the TLS
edge in line (edge.py), so the edge never serves something the database does not know about.
A failed deployment is logged and reported to the caller; `manage.py deploy_edge` resyncs.
Each change is logged as one event line with the channel's and institution's ids (event_log).
"""

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.fernet import InvalidToken
from django.db import IntegrityError, transaction
from django.utils import timezone

from certificates.models import Certificate
from core.audit import audit
from core.models import AuditEvent

from . import edge
from .deletion import channel_deletion
from .models import SalesChannel, verification_token_new
from .status import status_settle
from .tasks import probe_channel

logger = logging.getLogger(__name__)


HOSTNAME_TAKEN = "This hostname is already used by a sales channel."


class DeploymentError(Exception):
    """The database change is saved but the edge files could not be written."""


class HostnameTaken(Exception):
    """Another channel holds the hostname (it took it after the form checked); nothing saved."""

    def __init__(self, hostname: str):
        self.hostname = hostname
        super().__init__(HOSTNAME_TAKEN)


def _deploy(channel: SalesChannel, *, probe: bool = True) -> None:
    try:
        edge.edge_channel_deploy(channel)
        if probe:
            probe_after_deploy(channel)
    except (OSError, InvalidToken) as error:  # disk trouble, or a key under a removed key
        logger.error(
            "edge deployment failed for channel %s (%s): %s", channel.pk, channel.hostname, error
        )
        # A hostname stored before the length rule can only be fixed by renaming the channel.
        remedy = (
            "Give the channel a shorter hostname."
            if getattr(error, "errno", None) == errno.ENAMETOOLONG
            else "Run `manage.py deploy_edge` once the edge folder is writable."
        )
        raise DeploymentError(
            f"Saved, but the edge files for {channel.hostname} could not be written "
            f"({getattr(error, 'strerror', None) or error or 'the key could not be decrypted'}). "
            f"{remedy}"
        ) from error


def probe_after_deploy(channel: SalesChannel) -> None:
    """Queue a probe of what the edge now serves for the channel, once committed.

    Best effort: the deployment is done whatever happens to the probe, and the scheduled
    probe_channels catches up when the broker cannot take the task.
    """
    channel_id = channel.pk

    def queue() -> None:
        try:
            probe_channel.delay(channel_id)
        except Exception as error:  # broker unreachable: not the operator's problem here
            logger.warning("could not queue a probe of channel %s: %s", channel_id, error)

    transaction.on_commit(queue)


def channel_create(
    *, institution, name: str, hostname: str, actor, ssl_mode: str = SalesChannel.SslMode.NONE
) -> SalesChannel:
    """Create a channel; HostnameTaken when another channel holds the hostname by now.

    `ssl_mode` may be managed (the CSV import): a new channel has nothing on the edge and an
    unverified hostname, so choosing managed on its SSL page would only store the mode, which
    this does, with the status that follows (unverified)."""
    if ssl_mode not in (SalesChannel.SslMode.NONE, SalesChannel.SslMode.MANAGED):
        raise ValueError("a new channel has no certificate to serve in uploaded mode")
    with _hostname_claim(hostname), transaction.atomic():
        channel = SalesChannel.objects.create(
            institution=institution, name=name, hostname=hostname, ssl_mode=ssl_mode
        )
        status_settle(channel)
        audit(
            logger,
            "channel_created",
            "channel {channel_id} ({hostname}) created for institution {institution_id}",
            institution=institution,
            actor=actor,
            action=AuditEvent.Action.CHANNEL_CREATE,
            target=channel,
            details={"hostname": hostname, "ssl_mode": ssl_mode},
            channel_id=channel.pk,
            institution_id=institution.pk,
            hostname=hostname,
        )
    return channel


def channel_update(*, channel: SalesChannel, name: str, hostname: str, actor) -> SalesChannel:
    """Rename a channel or move it to another hostname (its edge files move with it).

    HostnameTaken when another channel holds the hostname by now; the channel is unchanged.
    """
    old_hostname, old_name = channel.hostname, channel.name
    try:
        with _hostname_claim(hostname, channel=channel), transaction.atomic():
            channel.name = name
            channel.hostname = hostname
            fields = ["name", "hostname"]
            if old_hostname != hostname:
                # Proof of ownership was for the old name: the new one is proved anew, with a
                # new token (README, "Onboarding a hostname").
                _verification_reset(channel)
                fields += VERIFICATION_FIELDS
            channel.save(update_fields=fields)
            _channel_update_audit(channel, actor=actor, old_hostname=old_hostname)
            status_settle(channel)
    except BaseException:
        channel.name, channel.hostname = old_name, old_hostname  # the row is as it was
        raise
    if old_hostname != hostname:
        try:
            edge.edge_hostname_remove(old_hostname)
        except OSError as error:
            logger.error("could not remove edge files of %s: %s", old_hostname, error)
        _deploy(channel)
    return channel


VERIFICATION_FIELDS = [
    "verification_token",
    "hostname_verified_at",
    "hostname_verified_by",
    "verification_checked_at",
    "verification_next_check_at",
    "verification_attempts",
]


def _verification_reset(channel: SalesChannel) -> None:
    channel.verification_token = verification_token_new()
    channel.hostname_verified_at = None
    channel.hostname_verified_by = ""
    channel.verification_checked_at = None
    channel.verification_next_check_at = None
    channel.verification_attempts = 0


def _channel_update_audit(channel: SalesChannel, *, actor, old_hostname: str) -> None:
    hostname = channel.hostname
    audit(
        logger,
        "channel_updated",
        "channel {channel_id} updated ({hostname}, was {previous_hostname})",
        institution=channel.institution,
        actor=actor,
        action=AuditEvent.Action.CHANNEL_UPDATE,
        target=channel,
        details={"hostname": hostname, "previous_hostname": old_hostname},
        channel_id=channel.pk,
        institution_id=channel.institution_id,
        hostname=hostname,
        previous_hostname=old_hostname,
    )


@contextmanager
def _hostname_claim(hostname: str, *, channel: SalesChannel | None = None) -> Iterator[None]:
    """Turn the unique violation of a write claiming `hostname` into HostnameTaken.

    The form's check that the hostname is free races with another request doing the same;
    the unique index decides. Wrapped around the write's own atomic block, whose rollback
    (a savepoint inside an outer transaction) leaves the connection usable. Any other
    integrity error is not about the hostname and is raised as it is.
    """
    try:
        yield
    except IntegrityError:
        others = SalesChannel.objects.filter(hostname=hostname)
        if channel is not None:
            others = others.exclude(pk=channel.pk)
        if not others.exists():
            raise
        logger.info("hostname %s was taken by another channel meanwhile", hostname)
        raise HostnameTaken(hostname) from None


def channel_delete(*, channel: SalesChannel, actor) -> None:
    """Delete a channel and remove its files from the edge; the audit row says what stopped
    being served (deletion.py)."""
    hostname = channel.hostname
    with transaction.atomic():
        stopped = channel_deletion(channel, timezone.now())
        served, proof = stopped.served_certificate, stopped.apple_pay_proof
        audit(
            logger,
            "channel_deleted",
            "channel {channel_id} ({hostname}) of institution {institution_id} deleted",
            institution=channel.institution,
            actor=actor,
            action=AuditEvent.Action.CHANNEL_DELETE,
            target=channel,
            details={
                "hostname": hostname,
                "ssl_mode": channel.ssl_mode,
                "served_certificate": served.pk if served is not None else None,
                "apple_pay_identity_proof": proof.pk if proof is not None else None,
            },
            channel_id=channel.pk,
            institution_id=channel.institution_id,
            hostname=hostname,
        )
        channel.delete()
    try:
        edge.edge_hostname_remove(hostname)
    except OSError as error:
        logger.error("could not remove edge files of %s: %s", hostname, error)
        raise DeploymentError(
            f"Deleted, but the edge files for {hostname} could not be removed ({error})."
        ) from error


def channel_set_ssl_mode(
    *, channel: SalesChannel, mode: str, certificate: Certificate | None = None, actor
) -> SalesChannel:
    """Apply the SSL Management choice of a channel (the form has checked `certificate`).

    - none: nothing is served any more; the edge files are removed.
    - uploaded: `certificate` becomes the chosen and the active certificate and is deployed.
    - managed: recorded; the active certificate (if any) stays deployed until the platform's
      own certificate has been issued and put in its place, so the shop never goes dark.
    """
    previous = {
        "mode": channel.ssl_mode,
        "certificate": channel.certificate_id,
        "active_certificate": channel.active_certificate_id,
    }
    with transaction.atomic():
        channel.ssl_mode = mode
        if mode == SalesChannel.SslMode.NONE:
            channel.certificate = None
            channel.active_certificate = None
        elif mode == SalesChannel.SslMode.UPLOADED:
            if certificate is None:
                raise ValueError("uploaded mode needs a certificate")
            channel.certificate = certificate
            channel.active_certificate = certificate
        else:
            channel.certificate = None
        if mode == SalesChannel.SslMode.MANAGED and previous["mode"] != mode:
            # A fresh start for managed renewal: due now, no failures carried over.
            channel.renewal_due_at = None
            channel.renewal_failures = 0
            channel.renewal_next_attempt_at = None
            channel.renewal_last_error = ""
        channel.save(
            update_fields=[
                "ssl_mode",
                "certificate",
                "active_certificate",
                "renewal_due_at",
                "renewal_failures",
                "renewal_next_attempt_at",
                "renewal_last_error",
            ]
        )
        audit(
            logger,
            "channel_ssl_mode_changed",
            "channel {channel_id} ({hostname}): SSL mode {ssl_mode}, certificate {certificate_id}"
            " (was {previous_ssl_mode}, certificate {previous_certificate_id})",
            institution=channel.institution,
            actor=actor,
            action=AuditEvent.Action.CHANNEL_SSL_MODE,
            target=channel,
            details={
                "mode": mode,
                "certificate": channel.certificate_id,
                "active_certificate": channel.active_certificate_id,
                "previous": previous,
            },
            channel_id=channel.pk,
            institution_id=channel.institution_id,
            hostname=channel.hostname,
            ssl_mode=mode,
            certificate_id=channel.certificate_id,
            active_certificate_id=channel.active_certificate_id,
            previous_ssl_mode=previous["mode"],
            previous_certificate_id=previous["certificate"],
        )
        status_settle(channel)
    # A managed channel with nothing issued yet serves nothing: a probe could only fail (the
    # issuance probes what it deploys).
    _deploy(
        channel,
        probe=not (mode == SalesChannel.SslMode.MANAGED and channel.active_certificate_id is None),
    )
    return channel


def channel_set_apple_pay(
    *,
    channel: SalesChannel,
    enabled: bool,
    identity_proof: Certificate | None,
    actor,
) -> SalesChannel:
    """Turn Apple Pay on or off on a channel and name its identity proof (None: the
    institution's latest valid one); the form has checked the proof. The well-known file
    changes at once (it is served from the database); a probe is queued to check it."""
    if identity_proof is not None and (
        identity_proof.institution_id != channel.institution_id
        or identity_proof.kind != Certificate.Kind.APPLE_IDENTITY_PROOF
    ):
        raise ValueError("the identity proof must be one of the channel's institution")
    previous = {
        "enabled": channel.apple_pay_enabled,
        "identity_proof": channel.apple_identity_proof_id,
    }
    with transaction.atomic():
        channel.apple_pay_enabled = enabled
        channel.apple_identity_proof = identity_proof
        fields = ["apple_pay_enabled", "apple_identity_proof"]
        if not enabled:
            channel.apple_probe_ok = None
            channel.apple_probe_checked_at = None
            channel.apple_probe_failure = ""
            fields += ["apple_probe_ok", "apple_probe_checked_at", "apple_probe_failure"]
        channel.save(update_fields=fields)
        audit(
            logger,
            "channel_apple_pay_changed",
            "channel {channel_id} ({hostname}): Apple Pay {state}, identity proof {certificate_id}",
            institution=channel.institution,
            actor=actor,
            action=AuditEvent.Action.CHANNEL_APPLE_PAY,
            target=channel,
            details={
                "enabled": enabled,
                "identity_proof": channel.apple_identity_proof_id,
                "previous": previous,
            },
            shown={"hostname": channel.hostname, "state": "on" if enabled else "off"},
            channel_id=channel.pk,
            institution_id=channel.institution_id,
            apple_pay_enabled=enabled,
            certificate_id=channel.apple_identity_proof_id,
        )
        if enabled:
            probe_after_deploy(channel)
    return channel


def channel_hostname_verified_mark(
    *, channel: SalesChannel, method: str, actor, details: dict | None = None
) -> bool:
    """Record that the channel's institution proved control of its hostname (TXT record, HTTP
    token, or staff approval); returns False when it was verified already. Audited."""
    now = timezone.now()
    with transaction.atomic():
        marked = SalesChannel.objects.filter(
            pk=channel.pk, hostname=channel.hostname, hostname_verified_at__isnull=True
        ).update(
            hostname_verified_at=now,
            hostname_verified_by=method,
            verification_checked_at=now,
            verification_next_check_at=None,
        )
        if not marked:
            return False
        channel.hostname_verified_at = now
        channel.hostname_verified_by = method
        channel.verification_checked_at = now
        channel.verification_next_check_at = None
        audit(
            logger,
            "channel_hostname_verified",
            "channel {channel_id} ({hostname}): hostname ownership verified by {method}",
            institution=channel.institution,
            actor=actor,
            action=AuditEvent.Action.CHANNEL_HOSTNAME_VERIFIED,
            target=channel,
            details={"method": method, **(details or {})},
            channel_id=channel.pk,
            institution_id=channel.institution_id,
            hostname=channel.hostname,
            method=method,
        )
        status_settle(channel, now)
    return True
