"""Writes of the API tokens (README, "API"): created by a manager for one institution, shown
once, revoked. Each is audited like any other write (core/audit.py)."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit
from core.models import AuditEvent
from institutions.models import Institution

from . import tokens
from .models import ApiToken

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenCreated:
    token: ApiToken
    # The secret, to be shown once and never stored.
    secret: str


class FormSentAgain(Exception):
    """The form that created `token` came again (a reload re-sends it): nothing was created."""

    def __init__(self, token: ApiToken):
        super().__init__(f"API token {token.pk} was created by this form already")
        self.token = token


@transaction.atomic
def api_token_create(
    *,
    institution: Institution,
    name: str,
    role: str,
    expires_at: datetime,
    actor,
    form_id: uuid.UUID | None = None,
) -> TokenCreated:
    """A new token for `institution`: its secret is returned once, only its hash is kept.

    `form_id`, when given, makes the creation happen once per form: a second call with it
    raises FormSentAgain, naming the token the first one made (two at once included: the
    database's unique constraint decides)."""
    if form_id is not None:
        earlier = ApiToken.objects.filter(institution=institution, form_id=form_id).first()
        if earlier is not None:
            raise FormSentAgain(earlier)
    secret = tokens.secret_new()
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                institution=institution,
                name=name,
                role=role,
                secret_sha256=tokens.secret_hash(secret),
                prefix=secret[: tokens.PREFIX_SHOWN],
                created_by=actor,
                expires_at=expires_at,
                form_id=form_id,
            )
    except IntegrityError:
        earlier = ApiToken.objects.filter(institution=institution, form_id=form_id).first()
        if form_id is None or earlier is None:
            raise
        raise FormSentAgain(earlier) from None
    audit(
        logger,
        "api_token_created",
        "API token {token_id} ({role}) created for institution {institution_id}",
        institution=institution,
        actor=actor,
        action=AuditEvent.Action.API_TOKEN_CREATE,
        target=token,
        details={"role": role, "expires_at": expires_at.isoformat()},
        token_id=token.pk,
        role=role,
        institution_id=institution.pk,
    )
    return TokenCreated(token=token, secret=secret)


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor) -> bool:
    """Revoke the token at once; False when it was revoked already."""
    now = timezone.now()
    if not ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        return False
    token.revoked_at = now
    audit(
        logger,
        "api_token_revoked",
        "API token {token_id} revoked in institution {institution_id}",
        institution=token.institution,
        actor=actor,
        action=AuditEvent.Action.API_TOKEN_REVOKE,
        target=token,
        token_id=token.pk,
        institution_id=token.institution_id,
    )
    return True
