"""Writes of expiry monitoring's settings. Views call these; each runs in one transaction."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.audit import audit
from core.models import AuditEvent
from institutions.models import Institution
from institutions.signing_secrets import ROTATION_OVERLAP, signing_secret_encrypted_new

logger = logging.getLogger(__name__)


@transaction.atomic
def institution_notifications_update(
    *, institution: Institution, notification_emails: str, webhook_url: str, actor
) -> Institution:
    """Set where the institution's expiry digests go (addresses already validated)."""
    previous = {
        "notification_emails": institution.notification_email_list,
        "webhook": bool(institution.webhook_url),
    }
    institution.notification_emails = notification_emails
    institution.webhook_url = webhook_url
    institution.save(update_fields=["notification_emails", "webhook_url"])
    audit(
        logger,
        "institution_notifications_updated",
        "institution {institution_id}: digests to {addresses} address(es), webhook {webhook_set}",
        institution=institution,
        actor=actor,
        action=AuditEvent.Action.INSTITUTION_NOTIFICATIONS,
        target=institution,
        # The webhook URL often carries a chat tool's secret: only whether there is one.
        details={
            "notification_emails": institution.notification_email_list,
            "webhook": bool(webhook_url),
            "previous": previous,
        },
        shown={"webhook_set": "set" if webhook_url else "none"},
        institution_id=institution.pk,
        addresses=len(institution.notification_email_list),
        webhook=bool(webhook_url),  # never the URL: it often carries a secret
    )
    return institution


@transaction.atomic
def webhook_secret_rotate(*, institution: Institution, actor, now: datetime | None = None):
    """Give the institution a new webhook signing secret (README, "Expiry monitoring": Signed
    webhooks). The one it replaces signs beside it for ROTATION_OVERLAP; a secret replaced
    before then stops signing at once (only the latest previous one is kept)."""
    now = now or timezone.now()
    locked = Institution.objects.select_for_update().get(pk=institution.pk)
    locked.webhook_secret_previous_encrypted = locked.webhook_secret_encrypted
    locked.webhook_secret_encrypted = signing_secret_encrypted_new()
    locked.webhook_secret_changed_at = now
    locked.save(
        update_fields=[
            "webhook_secret_previous_encrypted",
            "webhook_secret_encrypted",
            "webhook_secret_changed_at",
        ]
    )
    previous_until = now + ROTATION_OVERLAP
    audit(
        logger,
        "institution_webhook_secret_rotated",
        "institution {institution_id}: new webhook signing secret; the previous one signs "
        "until {previous_until}",
        institution=locked,
        actor=actor,
        action=AuditEvent.Action.INSTITUTION_WEBHOOK_SECRET,
        target=locked,
        # Never the secret, old or new.
        details={"previous_signs_until": previous_until.isoformat()},
        institution_id=locked.pk,
        previous_until=previous_until.isoformat(),
    )
    return locked
