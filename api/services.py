"""Writes of the API tokens (README, "API"): created by a manager for one institution, shown
once, revoked. Each is audited like any other write (core/audit.py)."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
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


@transaction.atomic
def api_token_create(
    *, institution: Institution, name: str, role: str, expires_at: datetime, actor
) -> TokenCreated:
    """A new token for `institution`: its secret is returned once, only its hash is kept."""
    secret = tokens.secret_new()
    token = ApiToken.objects.create(
        institution=institution,
        name=name,
        role=role,
        secret_sha256=tokens.secret_hash(secret),
        prefix=secret[: tokens.PREFIX_SHOWN],
        created_by=actor,
        expires_at=expires_at,
    )
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
