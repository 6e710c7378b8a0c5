"""Expiry monitoring's own records: the findings sent to institutions and the watermark of
the hourly check (README, "Expiry monitoring")."""

from django.db import models
from django.db.models import Q


class Notification(models.Model):
    """One finding sent to an institution, at most once per threshold (the unique key), so
    reruns and restarts never send it again.

    A finding is about a certificate (expiry thresholds) or a sales channel (renewal failing,
    probe problem). `threshold` names the step, e.g. "30d", "0d" (at expiry), "half" and
    "quarter" (short-lived certificates), "renewal-failing", "probe-mismatch".
    """

    class Kind(models.TextChoices):
        CERTIFICATE_EXPIRY = "certificate_expiry", "Certificate expiry"
        RENEWAL_FAILING = "renewal_failing", "Renewal failing"
        PROBE_PROBLEM = "probe_problem", "Served certificate wrong"

    # No index of their own on the three foreign keys: the unique keys and notification_recent
    # lead with them, and each index less makes recording a finding cheaper.
    # The institution is the one of the certificate or the channel (a copy, for delivery), and
    # those foreign keys hold in the database: a constraint of its own would check it again
    # for every finding recorded (about 2 ms, a tenth, of an hourly check_expiry on
    # PostgreSQL at a million certificates). Deleting an institution deletes its findings all
    # the same (Django's on_delete).
    institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    certificate = models.ForeignKey(
        "certificates.Certificate",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        db_index=False,
    )
    channel = models.ForeignKey(
        "saleschannels.SalesChannel",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        db_index=False,
    )
    threshold = models.CharField(max_length=32)
    # For channel findings, which occurrence this is (e.g. when the failure streak began), so
    # that a problem that comes back after being fixed is reported again.
    episode = models.CharField(max_length=64, blank=True)
    # What was true when it was found (for the digest and the history).
    expires_at = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Delivery: e-mail sent (or no address to send to), webhook delivered or why it failed
    # (both empty when the institution has no webhook).
    emailed_at = models.DateTimeField(null=True, blank=True)
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)
    webhook_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["certificate", "threshold"],
                condition=Q(certificate__isnull=False),
                name="notification_once_per_certificate_threshold",
            ),
            models.UniqueConstraint(
                fields=["channel", "threshold", "episode"],
                condition=Q(channel__isnull=False),
                name="notification_once_per_channel_threshold",
            ),
        ]
        indexes = [
            models.Index(fields=["institution", "created_at"], name="notification_recent"),
            # The findings whose e-mail is still to be sent (or retried), for each run.
            models.Index(
                fields=["created_at"],
                condition=Q(emailed_at__isnull=True),
                name="notification_unsent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.threshold}"


class ExpiryCheck(models.Model):
    """The one row saying up to which instant check_expiry has looked (its watermark)."""

    checked_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"checked until {self.checked_until:%Y-%m-%d %H:%M}"


class NotificationTest(models.Model):
    """One test message a manager had sent from the notification settings page: the ledger
    that keeps tests to NOTIFICATION_TEST_LIMIT per kind and institution in any window of
    NOTIFICATION_TEST_WINDOW (monitoring/notification_tests.py). What each test came to is in
    the audit trail; rows older than the window are deleted as new ones are taken."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    requested_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["institution", "kind", "requested_at"], name="notification_test_recent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} test at {self.requested_at:%Y-%m-%d %H:%M}"
