"""ACME state kept in the database: accounts, pending HTTP-01 challenges and orders.

Challenges live in the database (not in a process's memory) so that whichever web process
the CA reaches answers them.
"""

from django.db import models


class AcmeAccount(models.Model):
    """One account per ACME directory; its key is encrypted at rest like certificate keys."""

    directory_url = models.URLField(max_length=500, unique=True)
    key_encrypted = models.TextField()
    uri = models.URLField(max_length=500, blank=True)
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.uri or self.directory_url


class AcmeChallenge(models.Model):
    """A pending HTTP-01 challenge: GET /.well-known/acme-challenge/<token> on `hostname`."""

    token = models.CharField(max_length=255, unique=True)
    key_authorization = models.TextField()
    hostname = models.CharField(max_length=253)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.hostname} {self.token[:8]}…"


class AcmeOrder(models.Model):
    """Each order placed with a CA: history on the channel page, and a count for tests."""

    class Status(models.TextChoices):
        PENDING = "pending", "In progress"
        VALID = "valid", "Issued"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(
        "saleschannels.SalesChannel",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="acme_orders",
    )
    hostname = models.CharField(max_length=253)
    directory_url = models.URLField(max_length=500)
    order_url = models.URLField(max_length=500, blank=True)
    # The ACME profile asked for ("" when none), and the ARI identifier of the certificate the
    # order replaces (RFC 9773 section 5; "" when it named none, or the CA refused it).
    profile = models.CharField(max_length=64, blank=True)
    replaces = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    certificate = models.ForeignKey(
        "certificates.Certificate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.status})"

    @property
    def carried_replaces(self) -> bool:
        """Whether the CA took the order as a renewal of a named certificate (RFC 9773)."""
        return bool(self.replaces)
