"""Managed certificates: claim a channel, obtain its certificate over ACME, switch, deploy.

The workflow of one issuance (`channel_certificate_issue`), in this order:

1. the caller holds the channel's claim (`channel_issuance_claim`, a conditional update);
2. order -> HTTP-01 (challenge stored in the database, answered by any web process) ->
   finalize -> download, with the previous managed certificate's key when the operator allows
   it (ACME_REUSE_KEY, acme_client/keys.py), else a new one; the order asks for the channel's
   profile (else ACME_PROFILE) and a renewal names the certificate it replaces (RFC 9773
   section 5, acme_client/ari.py), the renewal being planned from ARI or the lifetime;
3. the certificate is checked like an upload and stored as a managed Certificate that
   `replaces` the previous one;
4. the channel's active certificate is switched, and the claim released, in one transaction
   that only commits while the claim is still ours;
5. the edge files are written.

Until step 5 the previous certificate stays active and served. A failure changes nothing but
the channel's renewal state (attempts, plain-words error, next attempt with backoff).

Before step 2 places anything, the order takes the CA's budgets (acme_client/budgets.py,
README "Rate limits (the CA's budgets)"), unless it names the certificate it replaces, which
the CA exempts; when one is spent, or the CA answered 429 "rateLimited", no order is placed
and the channel is queued until the budget frees (acme_client/deferral.py), with no failure
counted.

Each order logs its start and its outcome as event lines (acme_order_started, then
acme_certificate_issued / acme_certificate_renewed / acme_issuance_failed / acme_claim_lost /
acme_order_deferred) with order_id, channel_id and institution_id as fields.
"""

import logging
import threading
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from certificates.bundle import certificate_bundle_parse
from certificates.models import Certificate
from certificates.services import certificate_upload
from core import encryption
from core.audit import audit_record, event_log
from core.models import AuditEvent
from saleschannels import edge
from saleschannels.findings import Reason
from saleschannels.models import ChannelStatus, SalesChannel
from saleschannels.services import probe_after_deploy
from saleschannels.status import status_set, status_settle

from . import ari, budgets, deferral, protocol
from .budgets import BudgetFull
from .challenges import challenge_publish, challenge_withdraw
from .keys import certificate_key_for
from .models import AcmeAccount, AcmeOrder
from .preflight import failure_wait, preflight_pass
from .problems import BAD_CERTIFICATE, failure_finding

logger = logging.getLogger(__name__)

# How long a claim protects an issuance from other workers; past it, a crashed worker's
# channel can be claimed again.
CLAIM_MARGIN = timedelta(minutes=5)
# What the CA answers when it could not validate the hostname: each counts against the
# hostname's failed-validation budget (Let's Encrypt: 5 per hour,
# https://letsencrypt.org/docs/rate-limits/).
_VALIDATION_FAILURES = (
    Reason.ACME_CAA,
    Reason.ACME_DNS,
    Reason.ACME_CONNECTION,
    Reason.ACME_UNAUTHORIZED,
)


class ClaimLost(Exception):
    """Another worker took the channel over (our lease ran out): keep nothing of ours."""


def _claim_lease() -> timedelta:
    return timedelta(seconds=settings.ACME_ORDER_TIMEOUT) + CLAIM_MARGIN


def channel_issuance_claim(
    *, channel_id: int, now: datetime | None = None, due_only: bool = False
) -> str | None:
    """Claim a managed channel for one issuance; returns the claim token, or None when another
    worker holds it (or, with due_only, when it is not due any more)."""
    now = now or timezone.now()
    token = str(uuid.uuid4())
    candidates = SalesChannel.objects.filter(
        _unclaimed_q(now),
        pk=channel_id,
        ssl_mode=SalesChannel.SslMode.MANAGED,
    )
    if due_only:
        candidates = candidates.filter(_due_q(now))
    updated = candidates.update(renewal_claim=token, renewal_claimed_until=now + _claim_lease())
    return token if updated == 1 else None


def _unclaimed_q(now: datetime) -> Q:
    return Q(renewal_claimed_until__isnull=True) | Q(renewal_claimed_until__lt=now)


def _due_q(now: datetime) -> Q:
    return (Q(renewal_due_at__isnull=True) | Q(renewal_due_at__lte=now)) & (
        Q(renewal_next_attempt_at__isnull=True) | Q(renewal_next_attempt_at__lte=now)
    )


def channels_due(now: datetime):
    """Managed channels whose certificate is due (or missing), not backing off, not claimed,
    with a verified hostname."""
    return SalesChannel.objects.filter(
        _due_q(now),
        _unclaimed_q(now),
        ssl_mode=SalesChannel.SslMode.MANAGED,
        hostname_verified_at__isnull=False,
    )


# Each worker thread keeps its ACME client between orders: the directory, the nonce it was
# last given and the HTTPS connection to the CA are used again instead of fetched anew for every
# order (manage.py acme_worker runs many threads, each a long series of orders).
_clients = threading.local()
CLIENT_REUSE = timedelta(minutes=10)


def account_client(*, deadline: datetime):
    """An ACME client for the configured directory, registering the account on first use.

    The account key is stored first (one row per directory, unique), so that workers starting
    at the same moment all use the same key: registering a key twice gives back the same
    account, and the CA sees one registration, not one per worker.

    The client is kept by the calling thread for CLIENT_REUSE and used again while the
    directory, the CA bundle and the account (its key, as stored) are the same.
    """
    directory_url = settings.ACME_DIRECTORY_URL
    account, _ = AcmeAccount.objects.get_or_create(
        directory_url=directory_url,
        defaults={
            "key_encrypted": lambda: encryption.encrypt(
                protocol.account_key_pem(protocol.account_key_generate())
            ),
            "contact_email": settings.ACME_CONTACT_EMAIL,
        },
    )
    identity = (directory_url, settings.ACME_CA_BUNDLE, account.pk, account.key_encrypted)
    kept = getattr(_clients, "kept", None)
    now = timezone.now()
    if account.uri and kept is not None and kept[0] == identity and now < kept[1]:
        return kept[2]
    acme = protocol.client_open(
        directory_url=directory_url,
        account_key=protocol.account_key_load(encryption.decrypt(account.key_encrypted)),
        account_uri=account.uri or None,
        ca_bundle=settings.ACME_CA_BUNDLE or True,
        deadline=deadline,
    )
    if not account.uri:
        uri = protocol.account_register(
            acme,
            email=settings.ACME_CONTACT_EMAIL,
            eab_kid=settings.ACME_EAB_KID,
            eab_hmac_key=settings.ACME_EAB_HMAC_KEY,
            deadline=deadline,
        )
        AcmeAccount.objects.filter(pk=account.pk).update(uri=uri)
    _clients.kept = (identity, now + CLIENT_REUSE, acme)
    return acme


class _Attempt:
    """One issuance's order as it goes: its row (None until the budgets allowed it), whether
    it is exempt from the CA's rate limits (it names the certificate it replaces, RFC 9773),
    and whether it reached finalization (from then on the CA may have issued)."""

    def __init__(self, channel: SalesChannel):
        self.channel = channel
        self.order: AcmeOrder | None = None
        self.exempt = False
        self.finalizing = False

    def ids(self) -> dict:
        return {
            "order_id": self.order.pk if self.order is not None else None,
            "channel_id": self.channel.pk,
            "institution_id": self.channel.institution_id,
        }

    def open(self, *, replaces: str) -> AcmeOrder:
        """Create the order row, taking the CA's budgets first unless it is exempt (the row and
        the takes in one transaction: a full budget raises BudgetFull and leaves nothing)."""
        channel = self.channel
        self.exempt = bool(replaces)

        def create() -> AcmeOrder:
            return AcmeOrder.objects.create(
                channel=channel,
                hostname=channel.hostname,
                directory_url=settings.ACME_DIRECTORY_URL,
                profile=channel.acme_profile or settings.ACME_PROFILE,
                replaces=replaces,
            )

        if self.exempt:
            self.order = create()
        else:
            self.order = budgets.order_budgets_take(
                hostname=channel.hostname, ca=settings.ACME_DIRECTORY_URL, order=None, create=create
            )
        self.started_log()
        return self.order

    def started_log(self) -> None:
        event_log(
            logger,
            "acme_order_started",
            "channel {channel_id} ({hostname}): ACME order {order_id} started",
            hostname=self.channel.hostname,
            exempt=self.exempt,
            **self.ids(),
        )

    def replaces_withdrawn(self) -> None:
        """The CA refused `replaces` and is asked again without it: no longer exempt, so the
        budgets are taken now (BudgetFull stops the order before it is placed again)."""
        AcmeOrder.objects.filter(pk=self.order.pk).update(replaces="")
        self.exempt = False
        budgets.order_budgets_take(
            hostname=self.channel.hostname, ca=settings.ACME_DIRECTORY_URL, order=self.order
        )


def _renewing(channel: SalesChannel) -> bool:
    """Whether the channel's next order renews a certificate issued here (which may name it in
    `replaces` and so be exempt from the CA's budgets)."""
    active = channel.active_certificate
    return active is not None and active.source == Certificate.Source.MANAGED


def channel_certificate_issue(*, channel_id: int, claim: str) -> Certificate | None:
    """Obtain and deploy a certificate for a claimed managed channel (see module docstring).

    Returns the new certificate, or None when the claim is not (or no longer) ours, the
    issuance failed (the failure is recorded on the channel), or the CA's rate limits keep the
    order waiting (the channel is queued, acme_client/deferral.py).
    """
    channel = (
        SalesChannel.objects.select_related("institution", "active_certificate")
        .filter(pk=channel_id)
        .first()
    )
    if channel is None:
        logger.info("channel %s: deleted since its issuance was queued, nothing to do", channel_id)
        return None
    if channel.renewal_claim != claim or channel.ssl_mode != SalesChannel.SslMode.MANAGED:
        logger.info("channel %s: claim not ours or mode changed, nothing to do", channel_id)
        return None
    if channel.hostname_verified_at is None:
        # No order for a name its institution has not proved (README, "Onboarding a
        # hostname"); a verification queues the issuance again.
        _claim_release(channel_id, claim)
        status_settle(channel)
        logger.info("channel %s: hostname not verified, no order", channel_id)
        return None
    if not _renewing(channel):
        # A first order is never exempt from the CA's budgets: one that must wait anyway is
        # queued before the pre-flight checks spend DNS and HTTP work on it.
        full = budgets.order_budgets_check(
            hostname=channel.hostname, ca=settings.ACME_DIRECTORY_URL
        )
        if full is not None:
            deferral.channel_defer(
                channel, claim=claim, full=full, directory_url=settings.ACME_DIRECTORY_URL
            )
            return None
    if not preflight_pass(channel, claim=claim):
        return None
    status_set(channel, ChannelStatus.ISSUING)
    started = timezone.now()
    SalesChannel.objects.filter(pk=channel_id, renewal_claim=claim).update(
        renewal_last_attempt_at=started
    )
    attempt = _Attempt(channel)
    try:
        certificate = _certificate_obtain_and_store(channel, claim=claim, attempt=attempt)
    except BudgetFull as full:
        _order_deferred(attempt, claim=claim, full=full)
        return None
    except ClaimLost:
        logger.warning(
            "channel %s: claim lost during issuance, result dropped",
            channel_id,
            extra={"event": "acme_claim_lost", **attempt.ids()},
        )
        _order_finish(
            attempt.order, status=AcmeOrder.Status.FAILED, error="claim lost to another worker"
        )
        return None
    except Exception as error:  # any failure: record it, keep the working certificate
        _order_failed(attempt, claim=claim, error=error)
        return None
    ids = attempt.ids()
    _order_finish(attempt.order, status=AcmeOrder.Status.VALID, certificate=certificate)
    status_settle(
        SalesChannel.objects.select_related("institution", "active_certificate").get(pk=channel_id)
    )
    try:
        edge.edge_channel_deploy(SalesChannel.objects.get(pk=channel_id))
        probe_after_deploy(channel)
    except OSError as error:
        logger.error("channel %s: deployment failed: %s", channel_id, error)
    previous = channel.active_certificate
    renewed = previous is not None and previous.source == Certificate.Source.MANAGED
    event_log(
        logger,
        "acme_certificate_renewed" if renewed else "acme_certificate_issued",
        "channel {channel_id} ({hostname}): certificate {certificate_id} {outcome}, expires"
        " {expires_at}",
        shown={"outcome": "renewed" if renewed else "issued"},
        hostname=channel.hostname,
        certificate_id=certificate.pk,
        replaces_id=previous.pk if previous is not None else None,
        expires_at=certificate.expires_at.isoformat(),
        **ids,
    )
    return certificate


def _order_deferred(attempt: _Attempt, *, claim: str, full: BudgetFull) -> None:
    """A budget is spent (or held): the channel waits, queued (acme_client/deferral.py)."""
    finding = deferral.channel_defer(
        attempt.channel,
        claim=claim,
        full=full,
        directory_url=settings.ACME_DIRECTORY_URL,
        order_id=attempt.order.pk if attempt.order is not None else None,
    )
    if attempt.order is not None:  # refused `replaces`, then no budget for the order without
        budgets.order_budgets_give_back(attempt.order)
        _order_finish(attempt.order, status=AcmeOrder.Status.FAILED, error=finding.words)


def _order_failed(attempt: _Attempt, *, claim: str, error: BaseException) -> None:
    """Record a failed order: said in words on the channel (failure counted, backoff), or,
    for the CA's 429 "rateLimited", as a hold in the budgets and the channel queued."""
    channel = attempt.channel
    ca = settings.ACME_DIRECTORY_URL
    outcome = failure_finding(
        error,
        directory_url=ca,
        caa_identity=(settings.ACME_CAA_IDENTITIES or ["letsencrypt.org"])[0],
    )
    if attempt.order is None:  # the CA could not be asked (its directory, the account)
        attempt.order = AcmeOrder.objects.create(
            channel=channel,
            hostname=channel.hostname,
            directory_url=ca,
            profile=channel.acme_profile or settings.ACME_PROFILE,
        )
        attempt.started_log()
    reason = outcome.finding.reason
    counted = reason is not Reason.ACME_RATE_LIMITED  # a rate limit is no failure of the channel
    if not attempt.finalizing:
        budgets.order_budgets_give_back(attempt.order)  # no certificate issued
    if reason in _VALIDATION_FAILURES:
        budgets.validation_failed(hostname=channel.hostname, ca=ca)
    logger.warning(
        "channel %s (%s): issuance failed: %s",
        channel.pk,
        channel.hostname,
        outcome.detail,
        extra={
            "event": "acme_issuance_failed",
            "hostname": channel.hostname,
            "failures": channel.renewal_failures + 1 if counted else channel.renewal_failures,
            "reason": reason.value,
            "error": outcome.detail,
            **attempt.ids(),
        },
    )
    _order_finish(attempt.order, status=AcmeOrder.Status.FAILED, error=outcome.finding.words)
    if not counted:
        # The platform's limit (README, "Rate limits (the CA's budgets)").
        full = deferral.rate_limit_hold(error, outcome=outcome, hostname=channel.hostname, ca=ca)
        deferral.channel_defer(
            channel, claim=claim, full=full, directory_url=ca, order_id=attempt.order.pk
        )
        return
    _failure_record(channel, claim=claim, outcome=outcome)


def _certificate_obtain_and_store(channel: SalesChannel, *, claim: str, attempt: _Attempt):
    deadline = protocol.deadline_in(settings.ACME_ORDER_TIMEOUT)
    acme = account_client(deadline=deadline)
    # The previous managed certificate's key when allowed, so that the edge's .key file does
    # not change and no handshake can pair a certificate with another key (keys.py).
    key_pem, _ = certificate_key_for(channel.active_certificate)
    # Whether the order names the certificate it replaces decides whether it is exempt from
    # the CA's rate limits, so it is known before the budgets are taken.
    replaces = ari.replaces_for(channel, acme)
    order = attempt.open(replaces=replaces)

    def finalizing() -> None:
        attempt.finalizing = True

    issued = protocol.certificate_obtain(
        acme,
        hostname=channel.hostname,
        key_pem=key_pem,
        deadline=deadline,
        profile=order.profile,
        replaces=replaces,
        replaces_withdrawn=attempt.replaces_withdrawn,
        finalizing=finalizing,
        challenge_publish=lambda token, key_authorization: challenge_publish(
            hostname=channel.hostname, token=token, key_authorization=key_authorization
        ),
        challenge_withdraw=lambda token: challenge_withdraw(token=token),
        order_placed=lambda url: AcmeOrder.objects.filter(pk=order.pk).update(order_url=url),
    )
    bundle = certificate_bundle_parse(
        certificate=issued.fullchain_pem.encode(), private_key=key_pem, kind="ssl"
    )
    if not bundle.ok:
        problems = "; ".join(m for messages in bundle.errors.values() for m in messages)
        raise protocol.AcmeFailure(
            f"The CA's certificate did not pass the checks: {problems}", code=BAD_CERTIFICATE
        )
    plan = ari.issuance_plan(
        acme,
        certificate_pem=bundle.certificate_pem,
        not_before=bundle.leaf.not_before,
        not_after=bundle.leaf.not_after,
        now=timezone.now(),
    )
    with transaction.atomic():
        certificate = certificate_upload(
            institution=channel.institution,
            name=f"{channel.hostname} (managed)",
            kind=Certificate.Kind.SSL,
            bundle=bundle,
            actor=None,
            source=Certificate.Source.MANAGED,
            replaces=channel.active_certificate,
        )
        switched = SalesChannel.objects.filter(
            pk=channel.pk, renewal_claim=claim, ssl_mode=SalesChannel.SslMode.MANAGED
        ).update(
            active_certificate=certificate,
            renewal_failures=0,
            renewal_last_error="",
            renewal_next_attempt_at=None,
            renewal_claim="",
            renewal_claimed_until=None,
            **plan,
        )
        if switched != 1:
            raise ClaimLost()
        audit_record(
            institution=channel.institution,
            actor=None,
            action=AuditEvent.Action.CHANNEL_CERTIFICATE_ISSUED,
            target=channel,
            details={
                "certificate": certificate.pk,
                "replaces": channel.active_certificate_id,
                "expires_at": certificate.expires_at.isoformat(),
                "order_url": issued.order_url,
            },
        )
    return certificate


def _claim_release(channel_id: int, claim: str) -> None:
    SalesChannel.objects.filter(pk=channel_id, renewal_claim=claim).update(
        renewal_claim="", renewal_claimed_until=None
    )


def _failure_record(channel: SalesChannel, *, claim: str, outcome) -> None:
    """Count the failure, schedule the next attempt with backoff (or when the CA said it
    may be retried, if later), release the claim; the status names the typed reason, the
    raw detail stays for the log and staff (renewal_last_error, shown in the admin only)."""
    now = timezone.now()
    failures = channel.renewal_failures + 1
    next_attempt = now + failure_wait(channel, failures, now=now)
    if outcome.retry_after is not None:
        next_attempt = max(next_attempt, now + timedelta(seconds=outcome.retry_after))
    renewing = (
        channel.active_certificate is not None
        and channel.active_certificate.source == Certificate.Source.MANAGED
    )
    with transaction.atomic():
        SalesChannel.objects.filter(pk=channel.pk, renewal_claim=claim).update(
            renewal_failures=failures,
            renewal_last_error=outcome.detail[:2000],
            renewal_next_attempt_at=next_attempt,
            renewal_claim="",
            renewal_claimed_until=None,
        )
        channel.renewal_failures = failures
        status_set(
            channel,
            ChannelStatus.RENEWAL_FAILING if renewing else ChannelStatus.ISSUANCE_FAILING,
            reason=outcome.finding.reason.value,
            params=outcome.finding.params,
            next_attempt_at=next_attempt,
            checked=True,
            now=now,
        )
        audit_record(
            institution=channel.institution,
            actor=None,
            action=AuditEvent.Action.CHANNEL_RENEWAL_FAILED,
            target=channel,
            details={
                "reason": outcome.finding.reason.value,
                "error": outcome.finding.words,
                "failures": failures,
            },
        )


def _order_finish(order: AcmeOrder, *, status: str, error: str = "", certificate=None) -> None:
    AcmeOrder.objects.filter(pk=order.pk).update(
        status=status, error=error[:2000], certificate=certificate, finished_at=timezone.now()
    )


def channels_renew_due(*, now: datetime | None = None, queue) -> int:
    """Claim every due channel and queue its issuance; returns how many were queued.

    `queue(channel_id, claim)` sends the task (Celery's delay, or a direct call in tests).
    """
    now = now or timezone.now()
    queued = 0
    for channel_id in channels_due(now).values_list("pk", flat=True):
        claim = channel_issuance_claim(channel_id=channel_id, now=now, due_only=True)
        if claim is None:
            continue  # another scheduler got there first
        queue(channel_id, claim)
        queued += 1
    if queued:
        logger.info(
            "renew_due: %s issuance(s) queued",
            queued,
            extra={"event": "acme_renewals_queued", "queued": queued},
        )
    return queued
