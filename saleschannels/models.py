"""Sales channels: the webshops, each on its own hostname, and which certificate they use."""

from django.db import models

from institutions.models import visible_institution_ids


class SalesChannelQuerySet(models.QuerySet):
    def visible_to(self, user) -> "SalesChannelQuerySet":
        return self.filter(institution__in=visible_institution_ids(user))


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

    objects = SalesChannelQuerySet.as_manager()

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hostname})"
