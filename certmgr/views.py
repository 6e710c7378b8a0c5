"""Views of the back office's home (the dashboard) and of the certificates window: list,
upload, detail, download, delete.

Each view loads what it shows through a query scoped to the user's institutions (another
institution's object is a 404), checks the manager role before any write (403), validates with
a form and calls one service.
"""

import base64
import json
from datetime import date

from cryptography import x509
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from institutions.models import Institution, user_can_manage
from saleschannels.models import SalesChannel

from . import charts, dashboard, encryption, selectors, services
from .bundle import certificate_facts
from .forms import SslUploadForm
from .models import AuditEvent, Certificate, CertificateStatus

PAGE_SIZE = 25
UPLOAD_DRAFT_SESSION_KEY = "certificate_upload_draft"


def _get_certificate_for_user(request, pk: int) -> Certificate:
    """The certificate if the user may see it, else 404 (never 403: ids must not leak)."""
    queryset = Certificate.objects.visible_to(request.user).with_status(timezone.now())
    return get_object_or_404(queryset.select_related("institution", "created_by"), pk=pk)


def _require_manager(request, institution) -> None:
    if not user_can_manage(request.user, institution):
        raise PermissionDenied("You need the manager role in this institution.")


@login_required
@require_GET
def home(request):
    """The dashboard: counts by status, the expiry timeline, the channels needing action."""
    now = timezone.now()
    counts = dashboard.status_counts(user=request.user, now=now)
    timeline = dashboard.expiry_timeline(user=request.user, now=now)
    list_url = reverse("certificate_list")
    return render(
        request,
        "dashboard.html",
        {
            "status_cards": [
                {"status": status, "label": label, "count": counts[status]}
                for status, label in CertificateStatus.choices
            ],
            "total": sum(counts.values()),
            "timeline_svg": charts.expiry_timeline_svg(timeline, list_url=list_url),
            "timeline": [
                {
                    "week": week,
                    "url": charts.week_url(list_url, week),
                    "segments": [
                        (status, week.counts[status])
                        for status in charts.SEGMENT_ORDER
                        if week.counts.get(status)
                    ],
                }
                for week in timeline
            ],
            "channel_actions": dashboard.channel_actions(user=request.user, now=now),
        },
    )


def _date_param(value: str) -> date | None:
    """An ISO date (YYYY-MM-DD) from the query string; anything else is ignored."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return None
    # Midnight on the first or last day of the calendar has no UTC time in every time zone.
    return day if date.min < day < date.max else None


@login_required
@require_GET
def certificate_list(request):
    filters = selectors.CertificateFilters(
        status=request.GET.get("status", ""),
        kind=request.GET.get("kind", ""),
        institution=request.GET.get("institution", ""),
        q=request.GET.get("q", "").strip(),
        sort=request.GET.get("sort", "expires_at"),
        expires_after=_date_param(request.GET.get("expires_after", "")),
        expires_before=_date_param(request.GET.get("expires_before", "")),
    )
    now = timezone.now()
    certificates = selectors.certificate_list(user=request.user, filters=filters, now=now)
    page = Paginator(certificates, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "certificate": certificate,
            "days_left": certificate.days_left(now),
            "channels": selectors.certificate_channels(certificate),
        }
        for certificate in page
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "certificates/list.html",
        {
            "page": page,
            "rows": rows,
            "filters": filters,
            "query_without_page": query.urlencode(),
            "statuses": CertificateStatus.choices,
            "kinds": Certificate.Kind.choices,
            "institutions": Institution.objects.visible_to(request.user).only("name", "slug"),
            "sorts": [
                ("expires_at", "Expiry, soonest first"),
                ("-expires_at", "Expiry, latest first"),
                ("name", "Name"),
                ("institution", "Institution"),
            ],
            "can_upload": Institution.objects.managed_by(request.user).exists(),
        },
    )


@login_required
@require_GET
def certificate_new(request):
    if not Institution.objects.managed_by(request.user).exists():
        raise PermissionDenied("You need the manager role to upload certificates.")
    return render(request, "certificates/new.html")


def _draft_load(request) -> dict:
    """Files kept from an attempt that asked for the expiry date (stored encrypted)."""
    token = request.session.get(UPLOAD_DRAFT_SESSION_KEY)
    if not token:
        return {}
    try:
        stored = json.loads(encryption.decrypt(token))
    except Exception:  # an undecryptable draft (rotated keys) is simply dropped
        return {}
    return {
        field: {"filename": item["filename"], "data": base64.b64decode(item["data"])}
        for field, item in stored.items()
    }


def _draft_save(request, draft: dict) -> None:
    stored = {
        field: {"filename": item["filename"], "data": base64.b64encode(item["data"]).decode()}
        for field, item in draft.items()
    }
    request.session[UPLOAD_DRAFT_SESSION_KEY] = encryption.encrypt(json.dumps(stored).encode())


@login_required
@require_http_methods(["GET", "POST"])
def certificate_upload_ssl(request):
    if not Institution.objects.managed_by(request.user).exists():
        raise PermissionDenied("You need the manager role to upload certificates.")
    now = timezone.now()
    if request.method == "GET":
        request.session.pop(UPLOAD_DRAFT_SESSION_KEY, None)
        form = SslUploadForm(user=request.user, now=now)
        return render(request, "certificates/upload_ssl.html", {"form": form})

    form = SslUploadForm(
        request.POST, request.FILES, user=request.user, now=now, draft=_draft_load(request)
    )
    if not form.is_valid():
        if form.needs_expiry:
            draft = form.draft_for_retry()
            _draft_save(request, draft)
            form.kept_files_show(draft)
        return render(request, "certificates/upload_ssl.html", {"form": form}, status=200)

    bundle = form.bundle
    certificate = services.certificate_upload(
        institution=form.cleaned_data["institution"],
        name=form.cleaned_data["name"],
        kind=Certificate.Kind.SSL,
        bundle=bundle,
        actor=request.user,
        expires_at=form.cleaned_data["expires_at"] if bundle.unreadable else None,
        content=form.file_bytes["certificate"] if bundle.unreadable else b"",
    )
    request.session.pop(UPLOAD_DRAFT_SESSION_KEY, None)
    messages.success(request, f"Certificate “{certificate.name}” uploaded.")
    return redirect(certificate)


@login_required
@require_GET
def certificate_detail(request, pk: int):
    certificate = _get_certificate_for_user(request, pk)
    channels = SalesChannel.objects.filter(certificate=certificate) | SalesChannel.objects.filter(
        active_certificate=certificate
    )
    events = AuditEvent.objects.filter(
        target_type="certificate", target_id=certificate.pk
    ).select_related("actor")
    return render(
        request,
        "certificates/detail.html",
        {
            "certificate": certificate,
            "days_left": certificate.days_left(timezone.now()),
            "chain": _chain_facts(certificate),
            "channels": channels.distinct(),
            "events": events,
            "can_manage": user_can_manage(request.user, certificate.institution),
        },
    )


def _chain_facts(certificate: Certificate) -> list:
    """Facts of each stored intermediate, for the detail page."""
    if not certificate.chain_pem:
        return []
    chain = x509.load_pem_x509_certificates(certificate.chain_pem.encode("ascii"))
    return [certificate_facts(intermediate) for intermediate in chain]


@login_required
@require_GET
def certificate_download(request, pk: int):
    """The public certificate and its chain as PEM; the private key is never sent."""
    certificate = _get_certificate_for_user(request, pk)
    if not certificate.certificate_pem:
        messages.error(
            request, "This certificate could not be read, so there is no PEM to download."
        )
        return redirect(certificate)
    response = HttpResponse(certificate.public_bundle_pem(), content_type="application/x-pem-file")
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in certificate.name)
    response["Content-Disposition"] = f'attachment; filename="{filename or "certificate"}.pem"'
    return response


@login_required
@require_POST
def certificate_delete(request, pk: int):
    certificate = _get_certificate_for_user(request, pk)
    _require_manager(request, certificate.institution)
    try:
        services.certificate_delete(certificate=certificate, actor=request.user)
    except services.CertificateInUseError as error:
        messages.error(request, str(error))
        return redirect(certificate)
    messages.success(request, f"Certificate “{certificate.name}” deleted.")
    return redirect("certificate_list")
