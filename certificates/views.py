"""Views of the certificates window: list,
upload (SSL, and Apple Pay's identity proof and certificates), detail, download, delete (after
a confirmation page naming what it stops, deletion.py), and the key-and-CSR requests for Apple
Pay certificates.

Each view loads what it shows through a query scoped to the user's institutions (another
institution's object is a 404), checks the manager role before any write (403), validates with
a form and calls one service.
"""

import base64
import json
from datetime import UTC

from cryptography import x509
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import encryption
from core.confirmation import CONFIRM_FIELD, confirmation_sent, confirmed
from core.models import AuditEvent
from institutions.models import Institution, user_can_manage
from institutions.permissions import require_manager, require_manager_somewhere, user_manages_any

from . import apple, downloads, export, selectors, services
from .deletion import certificate_deletion, request_deletion_token
from .filters import certificate_filters
from .forms import (
    AppleCertificateUploadForm,
    CertificateRequestCompleteForm,
    CertificateRequestForm,
    IdentityProofUploadForm,
    SslUploadForm,
)
from .models import Certificate, CertificateRequest, CertificateStatus

PAGE_SIZE = 25
UPLOAD_DRAFT_SESSION_KEY = "certificate_upload_draft"


def _get_certificate_for_user(request, pk: int) -> Certificate:
    """The certificate if the user may see it, else 404 (never 403: ids must not leak)."""
    queryset = Certificate.objects.visible_to(request.user).with_status(timezone.now())
    return get_object_or_404(queryset.select_related("institution", "created_by"), pk=pk)


def _get_request_for_user(request, pk: int) -> CertificateRequest:
    """The key-and-CSR request if the user may see it, else 404."""
    queryset = CertificateRequest.objects.visible_to(request.user)
    return get_object_or_404(queryset.select_related("institution", "created_by"), pk=pk)


def _bound(request) -> tuple:
    """(data, files) for a form: bound on POST even when nothing was sent, unbound on GET."""
    if request.method == "POST":
        return request.POST, request.FILES
    return None, None


@login_required
@require_GET
def certificate_list(request):
    filters, dates = certificate_filters(request.GET)
    now = timezone.now()
    certificates = selectors.certificate_list(user=request.user, filters=filters, now=now)
    page = Paginator(certificates, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "certificate": certificate,
            "days_left": certificate.days_left(now),
            "expiry_words": certificate.expiry_words(now),
            "channels": selectors.certificate_channels(certificate),
        }
        for certificate in page
    ]
    pending = selectors.certificate_requests_pending(user=request.user, filters=filters)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "certificates/list.html",
        {
            "page": page,
            "rows": rows,
            "pending_requests": pending if page.number == 1 else [],
            "filters": filters,
            "date_filters": [
                (dates["expires_after"], "Expires from", filters.expires_after),
                (dates["expires_before"], "Expires before", filters.expires_before),
            ],
            "query_without_page": query.urlencode(),
            # The export takes the same filters (every page of them).
            "export_url": f"{reverse('certificate_list_export')}?{query.urlencode()}".rstrip("?"),
            "statuses": CertificateStatus.choices,
            "kinds": Certificate.Kind.choices,
            "institutions": Institution.objects.visible_to(request.user).only("name", "slug"),
            "sorts": [
                ("expires_at", "Expiry, soonest first"),
                ("-expires_at", "Expiry, latest first"),
                ("name", "Name"),
                ("institution", "Institution"),
            ],
            "can_upload": user_manages_any(request.user),
        },
    )


@login_required
@require_GET
def certificate_list_export(request):
    """The list as CSV, with the filters of the query string (export.py)."""
    filters, _ = certificate_filters(request.GET)
    now = timezone.now()
    response = StreamingHttpResponse(
        export.certificate_list_csv(user=request.user, filters=filters, now=now),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="certificates-{now.astimezone(UTC):%Y-%m-%d}.csv"'
    )
    return response


@login_required
@require_GET
def certificate_new(request):
    require_manager_somewhere(request.user, to="upload certificates")
    return render(request, "certificates/new.html")


def _draft_load(request, *, page: str) -> dict:
    """Files kept from the last attempt on upload page `page` ("ssl", or an Apple Pay kind),
    with what the parser read in them (stored encrypted): {"files": {field: {filename,
    data}}, "bundle": {...}}. A draft of another page is not this one's."""
    token = request.session.get(UPLOAD_DRAFT_SESSION_KEY)
    if not token:
        return {}
    try:
        stored = json.loads(encryption.decrypt(token))
        # Drafts written before the Apple Pay pages kept files were the SSL page's.
        if stored.get("page", "ssl") != page:
            return {}
        # A draft written before the parser's result was kept holds only the files.
        files = stored.get("files", stored)
        return {
            "files": {
                field: {"filename": item["filename"], "data": base64.b64decode(item["data"])}
                for field, item in files.items()
            },
            "bundle": stored.get("bundle"),
        }
    except Exception:  # an undecryptable or damaged draft (rotated keys) is simply dropped
        return {}


def _draft_save(request, draft: dict, *, page: str) -> None:
    files = {
        field: {"filename": item["filename"], "data": base64.b64encode(item["data"]).decode()}
        for field, item in draft["files"].items()
    }
    stored = {"page": page, "files": files, "bundle": draft.get("bundle")}
    request.session[UPLOAD_DRAFT_SESSION_KEY] = encryption.encrypt(json.dumps(stored).encode())


def _draft_keep(request, form, *, page: str) -> None:
    """The form came back: keep the files that passed for the next attempt, encrypted in the
    session (never sent back to the browser), and say on the page which they are."""
    draft = form.draft_for_retry()
    if draft["files"]:
        _draft_save(request, draft, page=page)
    else:
        request.session.pop(UPLOAD_DRAFT_SESSION_KEY, None)
    form.kept_files_show(draft)


@login_required
@require_http_methods(["GET", "POST"])
def certificate_upload_ssl(request):
    require_manager_somewhere(request.user, to="upload certificates")
    now = timezone.now()
    if request.method == "GET":
        request.session.pop(UPLOAD_DRAFT_SESSION_KEY, None)
        form = SslUploadForm(user=request.user, now=now)
        return render(request, "certificates/upload_ssl.html", {"form": form})

    form = SslUploadForm(
        request.POST,
        request.FILES,
        user=request.user,
        now=now,
        draft=_draft_load(request, page="ssl"),
    )
    if not form.is_valid():
        _draft_keep(request, form, page="ssl")
        return render(request, "certificates/upload_ssl.html", {"form": form}, status=200)

    certificate = form.save(actor=request.user)
    request.session.pop(UPLOAD_DRAFT_SESSION_KEY, None)
    messages.success(request, f"Certificate “{certificate.name}” uploaded.")
    _same_certificate_notice(request, certificate)
    return redirect(certificate)


def _same_certificate_notice(request, certificate: Certificate) -> None:
    """Say so when the institution had this very certificate already (same SHA-256
    fingerprint). It is stored all the same (README, "Using it"): the new upload may bring
    what the first lacked (its key, its chain), and the operator deletes the one not needed."""
    earlier = selectors.certificate_stored_before(certificate)
    if earlier is None:
        return
    messages.warning(
        request,
        format_html(
            "The same certificate (same SHA-256 fingerprint) was already stored as "
            '<a href="{}">“{}”</a> on {}. Both are kept: delete the one you do not need.',
            earlier.get_absolute_url(),
            earlier.name,
            f"{earlier.created_at.astimezone(UTC):%Y-%m-%d}",
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def certificate_upload_identity_proof(request):
    """Apple Pay identity proof: the domain-association file, kept byte for byte."""
    require_manager_somewhere(request.user, to="upload certificates")
    form = IdentityProofUploadForm(*_bound(request), user=request.user, now=timezone.now())
    if request.method == "POST" and form.is_valid():
        certificate = form.save(actor=request.user)
        messages.success(request, f"Identity proof “{certificate.name}” uploaded.")
        return redirect(certificate)
    return render(request, "certificates/upload_identity_proof.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def certificate_upload_apple(request, kind: str):
    """An Apple Pay merchant identity or payment processing certificate that exists already
    (Apple's .cer with its key, or a .p12 from Keychain Access)."""
    require_manager_somewhere(request.user, to="upload certificates")
    now = timezone.now()
    if request.method == "GET":
        request.session.pop(UPLOAD_DRAFT_SESSION_KEY, None)
        form = AppleCertificateUploadForm(user=request.user, now=now, kind=kind)
    else:
        form = AppleCertificateUploadForm(
            request.POST,
            request.FILES,
            user=request.user,
            now=now,
            kind=kind,
            draft=_draft_load(request, page=kind),
        )
        if form.is_valid():
            certificate = form.save(actor=request.user)
            request.session.pop(UPLOAD_DRAFT_SESSION_KEY, None)
            _stored_message(request, certificate)
            _same_certificate_notice(request, certificate)
            return redirect(certificate)
        _draft_keep(request, form, page=kind)
    return render(
        request,
        "certificates/upload_apple.html",
        {"form": form, "kind_label": Certificate.Kind(kind).label, "kind": kind},
    )


def _stored_message(request, certificate: Certificate) -> None:
    text = f"Certificate “{certificate.name}” stored."
    if certificate.replaces_id:
        text += (
            f" It replaces “{certificate.replaces.name}” as the active payment processing "
            f"certificate of {certificate.merchant_identifier}."
        )
    messages.success(request, text)
    # Not issued by Apple: stored with its warning (the detail page lists it), said now too.
    leaf = x509.load_pem_x509_certificate(certificate.certificate_pem.encode("ascii"))
    issuer_warning = apple.issuer_not_apple_warning(certificate.kind, leaf)
    if issuer_warning:
        messages.warning(request, issuer_warning)


@login_required
@require_http_methods(["GET", "POST"])
def certificate_request_new(request):
    """Let certmgr create the key and the CSR Apple asks for."""
    require_manager_somewhere(request.user, to="upload certificates")
    initial = {}
    if request.GET.get("kind") in CertificateRequest.Kind.values:
        initial["kind"] = request.GET["kind"]
    data = request.POST if request.method == "POST" else None
    form = CertificateRequestForm(data, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        certificate_request = form.save(actor=request.user)
        messages.success(
            request,
            f"Key and CSR created for {certificate_request.merchant_identifier}: download the "
            "CSR and give it to Apple.",
        )
        return redirect(certificate_request)
    return render(request, "certificates/request_new.html", {"form": form})


def _request_page(request, certificate_request: CertificateRequest, form=None, status=200):
    replaces = None
    if certificate_request.is_pending and (
        certificate_request.kind == CertificateRequest.Kind.APPLE_PAYMENT_PROCESSING
    ):
        replaces = services.payment_processing_predecessor(
            institution=certificate_request.institution,
            merchant_identifier=certificate_request.merchant_identifier,
        )
    can_manage = user_can_manage(request.user, certificate_request.institution)
    if form is None and can_manage and certificate_request.is_pending:
        form = CertificateRequestCompleteForm(request=certificate_request, now=timezone.now())
    return render(
        request,
        "certificates/request_detail.html",
        {
            "certificate_request": certificate_request,
            "csr_filename": apple.csr_filename(certificate_request.merchant_identifier),
            "replaces": replaces,
            "form": form,
            "can_manage": can_manage,
            "events": AuditEvent.objects.filter(
                target_type="certificaterequest", target_id=certificate_request.pk
            ).select_related("actor"),
        },
        status=status,
    )


@login_required
@require_GET
def certificate_request_detail(request, pk: int):
    return _request_page(request, _get_request_for_user(request, pk))


@login_required
@require_GET
def certificate_request_csr(request, pk: int):
    """The CSR (PEM) as the .certSigningRequest file Apple's portal takes; never the key."""
    return downloads.csr_download_response(_get_request_for_user(request, pk))


@login_required
@require_POST
def certificate_request_complete(request, pk: int):
    """Apple's certificate for a pending request: paired with the request's key and stored."""
    certificate_request = _get_request_for_user(request, pk)
    require_manager(request.user, certificate_request.institution)
    if not certificate_request.is_pending:
        messages.info(request, "A certificate was already uploaded for this request.")
        return redirect(certificate_request.certificate or certificate_request)
    now = timezone.now()
    form = CertificateRequestCompleteForm(
        request.POST, request.FILES, request=certificate_request, now=now
    )
    if not form.is_valid():
        return _request_page(request, certificate_request, form=form)
    try:
        certificate = services.certificate_request_complete(
            request=certificate_request, bundle=form.bundle, actor=request.user, now=now
        )
    except services.RequestCompletedError as error:
        messages.info(request, str(error))
        return redirect(certificate_request)
    _stored_message(request, certificate)
    return redirect(certificate)


@login_required
@require_http_methods(["GET", "POST"])
def certificate_request_delete(request, pk: int):
    """GET: what deleting the pending request would do; a POST confirming it deletes it."""
    certificate_request = _get_request_for_user(request, pk)
    require_manager(request.user, certificate_request.institution, to="delete a CSR")
    if not certificate_request.is_pending:
        messages.error(request, "This request is completed; delete its certificate instead.")
        return redirect(certificate_request)
    if confirmed(request, request_deletion_token(certificate_request)):
        try:
            services.certificate_request_delete(request=certificate_request, actor=request.user)
        except services.RequestCompletedError as error:
            messages.error(request, str(error))
            return redirect(certificate_request)
        messages.success(request, f"CSR for {certificate_request.merchant_identifier} deleted.")
        return redirect("certificate_list")
    return render(
        request,
        "certificates/request_delete.html",
        {
            "certificate_request": certificate_request,
            "token": request_deletion_token(certificate_request),
            "confirm_field": CONFIRM_FIELD,
        },
    )


@login_required
@require_GET
def certificate_detail(request, pk: int):
    certificate = _get_certificate_for_user(request, pk)
    now = timezone.now()
    events = AuditEvent.objects.filter(
        target_type="certificate", target_id=certificate.pk
    ).select_related("actor")
    return render(
        request,
        "certificates/detail.html",
        {
            "certificate": certificate,
            "expiry_words": certificate.expiry_words(now),
            "chain": selectors.certificate_chain_facts(certificate),
            "channels": selectors.certificate_channels_using(certificate),
            "events": events,
            "can_manage": user_can_manage(request.user, certificate.institution),
            **_apple_facts(certificate, now),
        },
    )


def _apple_facts(certificate: Certificate, now) -> dict:
    """What the detail page says about an Apple Pay certificate or identity proof."""
    if certificate.kind == Certificate.Kind.APPLE_IDENTITY_PROOF:
        # Its page says where it is served, and which other channels name it (Apple Pay off,
        # or it expired): together, every channel using it, so there is no "Used by" row to
        # contradict "Served on".
        served_on = selectors.identity_proof_served_on(certificate, now)
        serving = {channel.pk for channel in served_on}
        named_by = [
            channel
            for channel in selectors.certificate_channels_using(certificate)
            if channel.pk not in serving
        ]
        return {"served_on": served_on, "named_by": named_by}
    if certificate.kind != Certificate.Kind.APPLE_PAYMENT_PROCESSING:
        return {}
    replaced_by = certificate.replaced_by.order_by("created_at", "pk").first()
    return {
        "replaced_by": replaced_by,
        "is_active_payment_processing": replaced_by is None and certificate.expires_at > now,
    }


@login_required
@require_GET
def certificate_download(request, pk: int):
    """The public certificate and its chain as PEM; the private key is never sent."""
    certificate = _get_certificate_for_user(request, pk)
    response = downloads.certificate_download_response(certificate)
    if response is None:
        messages.error(request, downloads.NO_PEM_MESSAGE)
        return redirect(certificate)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def certificate_delete(request, pk: int):
    """GET: what deleting the certificate would do, or why it cannot be (deletion.py); a POST
    confirming that very impact deletes it. Anything else shows the page again."""
    certificate = _get_certificate_for_user(request, pk)
    require_manager(request.user, certificate.institution, to="delete certificates")
    deletion = certificate_deletion(certificate, timezone.now())
    if not deletion.refusal and confirmed(request, deletion.token):
        try:
            services.certificate_delete(certificate=certificate, actor=request.user)
        except (services.CertificateInUseError, services.IdentityProofServedError) as error:
            messages.error(request, str(error))  # it changed in between: the page says how
            return redirect("certificate_delete", certificate.pk)
        messages.success(request, f"Certificate “{certificate.name}” deleted.")
        return redirect("certificate_list")
    return render(
        request,
        "certificates/delete.html",
        {
            "certificate": certificate,
            "deletion": deletion,
            "changed": confirmation_sent(request),
            "confirm_field": CONFIRM_FIELD,
        },
    )
