"""The audit trail: who did what to which object, and when.

At the bottom of the apps (every app records its writes here), so it names the models above
it only by string.
"""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what to which object, and when. Rows are never changed after they are written."""

    class Action(models.TextChoices):
        CERTIFICATE_UPLOAD = "certificate.upload", "Certificate uploaded"
        CERTIFICATE_DELETE = "certificate.delete", "Certificate deleted"
        CHANNEL_CREATE = "channel.create", "Sales channel created"
        CHANNEL_UPDATE = "channel.update", "Sales channel changed"
        CHANNEL_DELETE = "channel.delete", "Sales channel deleted"
        CHANNEL_SSL_MODE = "channel.ssl_mode", "SSL management changed"
        CHANNEL_CERTIFICATE_ISSUED = "channel.certificate_issued", "Certificate issued (ACME)"
        CHANNEL_RENEWAL_FAILED = "channel.renewal_failed", "Certificate renewal failed"
        CHANNEL_RENEW_NOW = "channel.renew_now", "Renewal requested"
        CHANNEL_HOSTNAME_VERIFIED = "channel.hostname_verified", "Hostname ownership verified"
        CHANNEL_RENEWAL_WINDOW_MOVED = (
            "channel.renewal_window_moved",
            "The CA moved the renewal window earlier (ARI)",
        )
        INSTITUTION_NOTIFICATIONS = "institution.notifications", "Notification settings changed"
        INSTITUTION_TEST_EMAIL = "institution.test_email", "Test e-mail sent"
        INSTITUTION_TEST_WEBHOOK = "institution.test_webhook", "Test webhook sent"
        INSTITUTION_WEBHOOK_SECRET = (
            "institution.webhook_secret",
            "Webhook signing secret replaced",
        )
        CHANNEL_APPLE_PAY = "channel.apple_pay", "Apple Pay settings changed"
        REQUEST_CREATE = "certificate_request.create", "Key and CSR created"
        REQUEST_COMPLETE = "certificate_request.complete", "Certificate received for the CSR"
        REQUEST_DELETE = "certificate_request.delete", "CSR deleted"
        API_TOKEN_CREATE = "api_token.create", "API token created"
        API_TOKEN_REVOKE = "api_token.revoke", "API token revoked"

    institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.CASCADE,
        related_name="audit_events",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    # The API token that acted (README, "API"), by the name its manager gave it: a token is
    # no user, so `actor` stays empty.
    actor_token = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    target_type = models.CharField(max_length=40)
    target_id = models.BigIntegerField()
    target_repr = models.CharField(max_length=255)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            # The history page: an institution's events, newest first (monitoring/history.py).
            models.Index(fields=["institution", "created_at", "id"], name="audit_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.target_repr}"

    @property
    def actor_name(self) -> str:
        """Who acted, as the pages name them: a user, an API token, or "" (the platform)."""
        if self.actor_token:
            return f"API token “{self.actor_token}”"
        return self.actor.get_username() if self.actor is not None else ""
