"""API tokens (README, "API"): each acts for one institution with one role, until it expires
or is revoked. Only the SHA-256 of its secret is stored (tokens.py); the secret is shown once,
when the token is created."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from institutions.models import Institution, Membership


class ApiTokenQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ApiTokenQuerySet":
        """Tokens of the institutions the user manages: only managers create and revoke them,
        and a token's name and role are theirs to see."""
        return self.filter(institution__in=Institution.objects.managed_by(user))

    def usable(self, now) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ApiToken(models.Model):
    Role = Membership.Role

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Membership.Role.choices)
    # The SHA-256 (hex) of the secret: a high-entropy secret needs no slow hash, and a lookup
    # by it is one indexed query (tokens.py).
    secret_sha256 = models.CharField(max_length=64, unique=True)
    # The first characters of the secret, shown in the list so a token can be recognised.
    prefix = models.CharField(max_length=16)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The id of the back-office form that created it: the browser sends the same form again
    # when the page that showed the secret is reloaded, and that must not make a second token.
    form_id = models.UUIDField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["institution", "form_id"], name="api_token_once_per_form"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now
