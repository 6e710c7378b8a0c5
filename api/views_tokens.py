"""API tokens in the back office (README, "API"): an institution's managers list, create and
revoke its tokens at /institutions/<slug>/api-tokens/. The secret is shown once, on the page
that answers the creation, and never stored (only its SHA-256, tokens.py)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from institutions.permissions import institution_for_user, require_manager

from . import services
from .forms import ApiTokenForm
from .models import ApiToken


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request, slug: str):
    institution = institution_for_user(request.user, slug)
    require_manager(request.user, institution, to="manage API tokens")
    now = timezone.now()
    form = ApiTokenForm(request.POST or None, today=now.date())
    created = sent_again = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.api_token_create(
                institution=institution,
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                expires_at=form.cleaned_data["expires_on"],
                actor=request.user,
                form_id=form.cleaned_data["form_id"],
            )
        except services.FormSentAgain as again:
            sent_again = again.token
        form = ApiTokenForm(today=now.date())
    tokens = ApiToken.objects.visible_to(request.user).filter(institution=institution)
    return render(
        request,
        "api/tokens.html",
        {
            "institution": institution,
            "form": form,
            "created": created,
            "sent_again": sent_again,
            "tokens": tokens.select_related("created_by"),
            "now": now,
        },
    )


@login_required
@require_POST
def api_token_revoke(request, slug: str, pk: int):
    institution = institution_for_user(request.user, slug)
    require_manager(request.user, institution, to="manage API tokens")
    token = get_object_or_404(
        ApiToken.objects.visible_to(request.user).filter(institution=institution), pk=pk
    )
    if services.api_token_revoke(token=token, actor=request.user):
        messages.success(request, f"API token “{token.name}” revoked: it no longer works.")
    else:
        messages.info(request, f"API token “{token.name}” was revoked already.")
    return redirect("api_tokens", slug=institution.slug)
