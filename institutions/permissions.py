"""The permission checks of every view, in one place: whether the user may write in an
institution (manager role, or staff), or in any at all. Reading is decided by the querysets'
`visible_to()`, so that another institution's object is a 404, never a 403."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from .models import Institution, user_can_manage


def user_manages_any(user) -> bool:
    """True when the user may write in at least one institution (e.g. to create something)."""
    return Institution.objects.managed_by(user).exists()


def require_manager(user, institution: Institution, *, to: str = "do this") -> None:
    """Raise PermissionDenied (403) unless the user may write in the institution."""
    if not user_can_manage(user, institution):
        raise PermissionDenied(f"You need the manager role in this institution to {to}.")


def require_manager_somewhere(user, *, to: str = "do this") -> None:
    """Raise PermissionDenied (403) unless the user may write in some institution."""
    if not user_manages_any(user):
        raise PermissionDenied(f"You need the manager role to {to}.")


def institution_for_user(user, slug: str) -> Institution:
    """The institution if the user may see it, else 404."""
    return get_object_or_404(Institution.objects.visible_to(user), slug=slug)
