"""Institutions (tenants) and who may see or change what in them.

Every object of the back office belongs to an institution. What a user may see is decided in
one place, InstitutionQuerySet.visible_to(), and what they may change in managed_by(); other
apps scope their querysets through these.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import models

from core import encryption

from .signing_secrets import ROTATION_OVERLAP, signing_secret_encrypted_new


@dataclass(frozen=True)
class InstitutionScope:
    """A caller that acts for one institution only, with one role: an API token (README,
    "API"). Its principal carries it as `institution_scope`, and every check below gives it
    that institution and nothing else, so the API goes through the same querysets and role
    checks as the pages."""

    institution_id: int
    role: str

    @property
    def manages(self) -> bool:
        return self.role == Membership.Role.MANAGER


def institution_scope(user) -> InstitutionScope | None:
    """The scope of a caller limited to one institution (an API token), None for a user."""
    return getattr(user, "institution_scope", None)


class InstitutionQuerySet(models.QuerySet):
    def visible_to(self, user) -> "InstitutionQuerySet":
        """Institutions the user may read: all for staff, else those they are a member of."""
        if not user.is_authenticated:
            return self.none()
        scope = institution_scope(user)
        if scope is not None:
            return self.filter(pk=scope.institution_id)
        if user.is_staff:
            return self.all()
        return self.filter(memberships__user=user)

    def managed_by(self, user) -> "InstitutionQuerySet":
        """Institutions in which the user may write: all for staff, else where they manage."""
        if not user.is_authenticated:
            return self.none()
        scope = institution_scope(user)
        if scope is not None:
            return self.filter(pk=scope.institution_id) if scope.manages else self.none()
        if user.is_staff:
            return self.all()
        return self.filter(memberships__user=user, memberships__role=Membership.Role.MANAGER)


class Institution(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    # Where expiry and renewal findings are sent (one digest per run), edited by managers.
    notification_emails = models.TextField(
        blank=True, help_text="E-mail addresses, one per line or separated by commas."
    )
    webhook_url = models.URLField(
        max_length=500, blank=True, help_text="Optional: a JSON POST per digest (chat tools)."
    )
    # The secret every webhook message is signed with (signing_secrets.py), encrypted; the one
    # it replaced keeps signing beside it until ROTATION_OVERLAP after webhook_secret_changed_at.
    webhook_secret_encrypted = models.TextField(
        default=signing_secret_encrypted_new, editable=False
    )
    webhook_secret_previous_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InstitutionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def webhook_signing_secret(self) -> str:
        return encryption.decrypt(self.webhook_secret_encrypted).decode("ascii")

    def webhook_secret_previous_until(self, now: datetime) -> datetime | None:
        """Until when the replaced secret still signs, or None when it no longer does."""
        if not self.webhook_secret_previous_encrypted or self.webhook_secret_changed_at is None:
            return None
        until = self.webhook_secret_changed_at + ROTATION_OVERLAP
        return until if until > now else None

    def webhook_signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a message sent at `now` is signed with: the current one, and the one it
        replaced during the overlap."""
        found = [self.webhook_signing_secret]
        if self.webhook_secret_previous_until(now) is not None:
            found.append(encryption.decrypt(self.webhook_secret_previous_encrypted).decode("ascii"))
        return found

    @property
    def notification_email_list(self) -> list[str]:
        text = self.notification_emails.replace(",", "\n").replace(";", "\n")
        return [address.strip() for address in text.splitlines() if address.strip()]


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        MANAGER = "manager", "Manager"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    institution = models.ForeignKey(
        Institution, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "institution"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.institution}"


def visible_institution_ids(user):
    """A subquery of the ids of the institutions the user may read, for filtering other models.

    Callers skip the filter for staff, who see everything; this covers members only.
    """
    if not user.is_authenticated:
        return Membership.objects.none().values("institution_id")
    scope = institution_scope(user)
    if scope is not None:
        return Institution.objects.filter(pk=scope.institution_id).values("pk")
    if user.is_staff:
        return Institution.objects.values("pk")
    return Membership.objects.filter(user=user).values("institution_id")


def user_can_manage(user, institution: Institution) -> bool:
    """True when the user may write in the institution (manager role, or staff)."""
    if not user.is_authenticated:
        return False
    scope = institution_scope(user)
    if scope is not None:
        return scope.manages and scope.institution_id == institution.pk
    if user.is_staff:
        return True
    return Membership.objects.filter(
        user=user, institution=institution, role=Membership.Role.MANAGER
    ).exists()
