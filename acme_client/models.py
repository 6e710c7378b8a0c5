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


class BudgetSlot(models.Model):
    """One unit of a CA rate limit (acme_client/budgets.py, README "Rate limits (the CA's
    budgets)"): a budget of N per window keeps N slots per key, each taken at most once per
    window, so that no window holds more than N takes whatever the number of workers."""

    # The ACME directory the budget is at (its account's, for the per-account budgets).
    ca = models.URLField(max_length=500)
    budget = models.CharField(max_length=32)
    # The name it is kept per: a registered domain, a set of names, a hostname; "" for the
    # whole account.
    key = models.CharField(max_length=1000, blank=True)
    slot = models.PositiveIntegerField()
    used_at = models.DateTimeField(null=True, blank=True)
    # What `used_at` was before the last take, so that an order that ends without a
    # certificate can give back the slots that count issued certificates only.
    previous_used_at = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey(
        AcmeOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ca", "budget", "key", "slot"], name="budget_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.budget} {self.key or '(account)'} #{self.slot}"


class BudgetHold(models.Model):
    """A wait the CA imposed (a 429 "rateLimited" with Retry-After) on one budget and key: no
    order that needs them is placed before `until`, by any worker."""

    ca = models.URLField(max_length=500)
    budget = models.CharField(max_length=32)
    key = models.CharField(max_length=1000, blank=True)
    until = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ca", "budget", "key"], name="budget_hold"),
        ]

    def __str__(self) -> str:
        return f"{self.budget} {self.key or '(account)'} until {self.until:%Y-%m-%d %H:%M}"
