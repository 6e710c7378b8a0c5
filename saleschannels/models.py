"""Sales channels: the webshops, each on its own hostname, and which certificate they use."""

from django.db import models
from django.urls import reverse

from institutions.models import visible_institution_ids


class SalesChannelQuerySet(models.QuerySet):
    def visible_to(self, user) -> "SalesChannelQuerySet":
        return self.filter(institution__in=visible_institution_ids(user))


class ProbeStatus(models.TextChoices):
    UNKNOWN = "", "Not checked yet"
    OK = "ok", "Serves the active certificate"
    MISMATCH = "mismatch", "Serves another certificate"
    EXPIRED = "expired", "Serves an expired certificate"
    FAILED = "failed", "TLS handshake failed"


# Probe results that need an operator: they count in the alert banner.
PROBE_PROBLEMS = (ProbeStatus.MISMATCH, ProbeStatus.EXPIRED, ProbeStatus.FAILED)


class SalesChannel(models.Model):
    class SslMode(models.TextChoices):
        NONE = "none", "No SSL"
        MANAGED = "managed", "Managed by the platform (Let's Encrypt)"
        UPLOADED = "uploaded", "Uploaded certificate"

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.CASCADE, related_name="sales_channels"
    )
    name = models.CharField(max_length=200)
    hostname = models.CharField(max_length=253, unique=True)
    ssl_mode = models.CharField(max_length=10, choices=SslMode.choices, default=SslMode.NONE)
    # The uploaded certificate chosen by an operator (ssl_mode == uploaded).
    certificate = models.ForeignKey(
        "certmgr.Certificate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="chosen_by_channels",
    )
    # The certificate deployed to the edge right now; it stays until its successor is in place.
    active_certificate = models.ForeignKey(
        "certmgr.Certificate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="active_on_channels",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # What the live probe last saw on the edge for this hostname (see probe.py).
    probe_status = models.CharField(
        max_length=10, choices=ProbeStatus.choices, default=ProbeStatus.UNKNOWN, blank=True
    )
    probe_checked_at = models.DateTimeField(null=True, blank=True)
    probe_fingerprint = models.CharField(max_length=95, blank=True)
    probe_expires_at = models.DateTimeField(null=True, blank=True)
    probe_error = models.TextField(blank=True)

    objects = SalesChannelQuerySet.as_manager()

    class Meta:
        ordering = ["hostname"]
        indexes = [models.Index(fields=["probe_status"], name="channel_probe_status")]

    def __str__(self) -> str:
        return f"{self.name} ({self.hostname})"

    def get_absolute_url(self) -> str:
        return reverse("channel_detail", args=[self.pk])

    @property
    def probe_has_problem(self) -> bool:
        return self.probe_status in PROBE_PROBLEMS
