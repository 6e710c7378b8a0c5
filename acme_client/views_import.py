"""The import page: sales channels from a CSV file, for managers (README, "Importing sales
channels"). Here rather than in saleschannels because managed rows are switched through
issuance (acme_client/imports.py).

- GET: the upload form. Viewers (no manager role anywhere) get 403.
- POST with the file: the preview, each row with what importing it does or its errors in
  plain words. The rows previewed are kept in the session with their digest
  (saleschannels.imports.import_rows_digest), which the page's Confirm button sends back.
- POST with `confirm`: the rows kept are checked again (a hostname may have been taken, a
  membership ended since) and imported, all or nothing, only when the digest is the one of
  the rows kept: a preview opened in another tab since cannot be confirmed by this one.

Institutions are those the user manages: another institution's slug reads as unknown.
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_http_methods

from core.confirmation import CONFIRM_FIELD, confirmation_sent
from institutions.models import Institution
from institutions.permissions import require_manager_somewhere
from saleschannels.imports import (
    HEADER,
    MAX_BYTES,
    MAX_ROWS,
    UNVERIFIED_NOTE,
    ImportFileError,
    ImportPlan,
    ImportRefused,
    import_check,
    import_parse,
    import_rows_load,
)

from .imports import channels_import

SESSION_KEY = "channel_import"


class ChannelImportForm(forms.Form):
    file = forms.FileField(label="CSV file")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A request body over CERTMGR_REQUEST_BODY_MAX_BYTES is answered 413 before this page
        # sees it (certmgr/upload_limits.py): larger files go through manage.py import_channels.
        limit = min(MAX_BYTES, settings.CERTMGR_REQUEST_BODY_MAX_BYTES) // 1024
        self.fields["file"].help_text = (
            f"UTF-8, header row {HEADER}, at most {MAX_ROWS:,} rows and {limit:,} KiB here "
            "(larger files: manage.py import_channels)."
        )

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(
                f"The file has {upload.size:,} bytes; at most {MAX_BYTES // (1024 * 1024)} MiB "
                "are imported at once: split it into several files."
            )
        data = upload.read()
        try:
            self.rows = import_parse(data)
        except ImportFileError as error:
            raise forms.ValidationError(str(error)) from None
        return data


def _render(request, form, plan: ImportPlan | None = None, *, changed: bool = False):
    return render(
        request,
        "saleschannels/import.html",
        {
            "form": form,
            "plan": plan,
            "changed": changed,
            "confirm_field": CONFIRM_FIELD,
            "unverified_note": UNVERIFIED_NOTE,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def channel_import(request):
    require_manager_somewhere(request.user, to="import sales channels")
    institutions = Institution.objects.managed_by(request.user)
    if confirmation_sent(request):
        return _confirm(request, institutions)
    if request.method == "GET":
        return _render(request, ChannelImportForm())
    form = ChannelImportForm(request.POST, request.FILES)
    if not form.is_valid():
        request.session.pop(SESSION_KEY, None)
        return _render(request, form)
    plan = import_check(form.rows, institutions=institutions)
    if plan.ok:
        request.session[SESSION_KEY] = {
            "digest": plan.digest,
            "rows": [planned.row.as_list() for planned in plan.rows],
        }
    else:
        request.session.pop(SESSION_KEY, None)
    return _render(request, ChannelImportForm(), plan)


def _confirm(request, institutions):
    kept = request.session.get(SESSION_KEY) or {}
    if not constant_time_compare(kept.get("digest", ""), request.POST.get(CONFIRM_FIELD, "")):
        # No preview kept, or another one since: nothing is imported.
        return _render(request, ChannelImportForm(), changed=True)
    plan = import_check(import_rows_load(kept["rows"]), institutions=institutions)
    try:
        result = channels_import(plan, actor=request.user)
    except ImportRefused as refused:
        # Refused since the preview (a hostname taken meanwhile): the rows say why.
        request.session.pop(SESSION_KEY, None)
        return _render(request, ChannelImportForm(), refused.plan)
    request.session.pop(SESSION_KEY, None)
    count, managed = len(result.created), plan.managed_count
    messages.success(
        request,
        f"{count:,} sales channel{'s' if count != 1 else ''} imported: {managed:,} managed, "
        f"{count - managed:,} without SSL.",
    )
    messages.info(request, UNVERIFIED_NOTE)
    for warning in result.warnings:
        messages.error(request, warning)
    return redirect("channel_list")
