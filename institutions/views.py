"""Institution pages: the user's institutions and their notification settings.

Institutions are loaded through Institution.objects.visible_to(user) (another institution is
a 404); viewers see the settings read-only and changing them needs the manager role (403).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from . import services
from .forms import NotificationSettingsForm
from .models import Institution, user_can_manage


def _get_institution_for_user(request, slug: str) -> Institution:
    """The institution if the user may see it, else 404."""
    return get_object_or_404(Institution.objects.visible_to(request.user), slug=slug)


@login_required
@require_GET
def institution_list(request):
    institutions = Institution.objects.visible_to(request.user).order_by("name")
    managed = set(Institution.objects.managed_by(request.user).values_list("pk", flat=True))
    rows = [
        {"institution": institution, "can_manage": institution.pk in managed}
        for institution in institutions
    ]
    return render(request, "institutions/list.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def institution_notifications(request, slug: str):
    institution = _get_institution_for_user(request, slug)
    can_manage = user_can_manage(request.user, institution)
    if request.method == "POST" and not can_manage:
        raise PermissionDenied("You need the manager role to change notification settings.")
    initial = {
        "notification_emails": institution.notification_emails,
        "webhook_url": institution.webhook_url,
    }
    form = NotificationSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.institution_notifications_update(
            institution=institution,
            notification_emails=form.cleaned_data["notification_emails"],
            webhook_url=form.cleaned_data["webhook_url"],
            actor=request.user,
        )
        messages.success(request, f"Notification settings of {institution.name} saved.")
        return redirect("institution_notifications", slug=institution.slug)
    return render(
        request,
        "institutions/notifications.html",
        {"institution": institution, "form": form, "can_manage": can_manage},
    )
