"""Institution pages: the user's institutions. (Their notification settings are expiry
monitoring's: monitoring.views.)

Institutions are loaded through institution_for_user (another institution is a 404).
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import Institution


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
