"""Writes of expiry monitoring's settings. Views call these; each runs in one transaction."""

import logging

from django.db import transaction

from core.audit import audit
from core.models import AuditEvent
from institutions.models import Institution

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
