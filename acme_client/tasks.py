"""Celery tasks: thin, idempotent wrappers that take ids and call one service each."""

from celery import shared_task

from . import ari, ownership, services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def issue_certificate(channel_id: int, claim: str) -> int | None:
    """Obtain, store, switch and deploy a managed certificate for a claimed channel."""
    certificate = services.channel_certificate_issue(channel_id=channel_id, claim=claim)
    return certificate.pk if certificate else None


@shared_task(acks_late=True)
def renew_due() -> int:
    """Beat: claim every managed channel that is due and queue its issuance."""
    return services.channels_renew_due(
        queue=lambda channel_id, claim: issue_certificate.delay(channel_id, claim)
    )


@shared_task(acks_late=True)
def ari_refresh() -> int:
    """Beat: ask ARI (RFC 9773) about the certificates whose next ask is due (about twice a
    day each, as the CA's Retry-After says) and move renewals the CA moved earlier."""
    return ari.channels_ari_refresh()


@shared_task(acks_late=True)
def verify_due() -> int:
    """Beat: re-check unverified hostnames whose next check is due (growing interval)."""
    return ownership.channels_verify_due()
