"""/api/v1/certificates/: the certificates window over HTTP (README, "API"), the same rules
and words as its pages (certificates/views.py): the list with the window's filters
(certificates/filters.py), every parsed fact and where a certificate is used, the upload
through the page's form and checker (its refusals as field errors), the public chain as PEM,
and delete, refused while in use (certificates/deletion.py). Never a key."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from certificates import downloads, selectors, services
from certificates.deletion import certificate_deletion
from certificates.filters import certificate_filters
from certificates.forms import SslUploadForm
from certificates.models import Certificate, CertificateStatus
from institutions.permissions import require_manager_somewhere

from .access import (
    certificate_for_token,
    form_data,
    form_refuse,
    require_manager,
    token_institution,
)
from .etags import etag_on_reads
from .pagination import ApiCursorPagination
from .presenters import certificate_present
from .problems import Conflict, problem
from .serializers import (
    CertificatePageSerializer,
    CertificateSerializer,
    CertificateUploadSerializer,
)


class ExpiryCursorPagination(ApiCursorPagination):
    """Soonest expiry first, as the certificates window lists them."""

    ordering = ("expires_at", "pk")


def certificate_detail_present(certificate: Certificate) -> dict:
    return certificate_present(
        certificate,
        timezone.now(),
        used_by=selectors.certificate_channels_using(certificate),
        detail=True,
    )


@extend_schema(
    methods=["GET"],
    operation_id="certificates_list",
    parameters=[
        OpenApiParameter("status", str, enum=CertificateStatus.values),
        OpenApiParameter("kind", str, enum=Certificate.Kind.values),
        OpenApiParameter("q", str, description="Search in names, domains, merchant ids."),
        OpenApiParameter("expires_after", OpenApiTypes.DATE, description="On or after."),
        OpenApiParameter("expires_before", OpenApiTypes.DATE, description="Before."),
    ],
    responses={200: CertificatePageSerializer},
)
@extend_schema(
    methods=["POST"],
    operation_id="certificates_upload",
    request={"multipart/form-data": CertificateUploadSerializer},
    responses={201: CertificateSerializer},
)
@etag_on_reads
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser])
def certificate_list(request):
    if request.method == "POST":
        return _certificate_upload(request)
    filters, dates = certificate_filters(request.query_params)
    if dates.errors:
        # The page shows the filter as not applied; the API refuses it on its field.
        raise form_refuse(dates)
    now = timezone.now()
    certificates = selectors.certificate_list(user=request.user, filters=filters, now=now)
    paginator = ExpiryCursorPagination()
    page = paginator.paginate_queryset(certificates.order_by("expires_at", "pk"), request)
    rows = [
        certificate_present(certificate, now, used_by=selectors.certificate_channels(certificate))
        for certificate in page
    ]
    return paginator.get_paginated_response(CertificateSerializer(rows, many=True).data)


def _certificate_upload(request):
    """The SSL upload: SslUploadForm, exactly as the page (certificate_upload_ssl) runs it.
    A certificate that cannot be read needs `expires_at`, sent with the files again."""
    require_manager_somewhere(request.user, to="upload certificates")
    now = timezone.now()
    institution = token_institution(request)
    form = SslUploadForm(
        form_data(request, institution=institution.pk),
        request.FILES,
        user=request.user,
        now=now,
    )
    if not form.is_valid():
        raise form_refuse(form)
    certificate = form.save(actor=request.user)
    certificate = certificate_for_token(request, certificate.pk)
    return Response(CertificateSerializer(certificate_detail_present(certificate)).data, status=201)


@extend_schema(
    methods=["GET"], operation_id="certificates_retrieve", responses=CertificateSerializer
)
@extend_schema(
    methods=["DELETE"],
    operation_id="certificates_delete",
    responses={204: None},
)
@etag_on_reads
@api_view(["GET", "DELETE"])
def certificate_detail(request, pk: int):
    certificate = certificate_for_token(request, pk)
    if request.method == "GET":
        return Response(CertificateSerializer(certificate_detail_present(certificate)).data)
    require_manager(request.user, certificate.institution, to="delete certificates")
    refusal = certificate_deletion(certificate, timezone.now()).refusal
    if refusal:
        raise Conflict(refusal)
    try:
        services.certificate_delete(certificate=certificate, actor=request.user)
    except (services.CertificateInUseError, services.IdentityProofServedError) as error:
        raise Conflict(str(error)) from None
    return Response(status=204)


@extend_schema(
    operation_id="certificates_download",
    responses={
        (200, downloads.PEM_CONTENT_TYPE): OpenApiResponse(
            OpenApiTypes.STR, description="The certificate and its chain (PEM); never a key."
        ),
        (200, "text/plain"): OpenApiResponse(
            OpenApiTypes.STR, description="An identity proof: the file as uploaded."
        ),
    },
)
@etag_on_reads
@api_view(["GET"])
def certificate_download(request, pk: int):
    """The public certificate and its chain as PEM (an identity proof: its file); never a key."""
    response = downloads.certificate_download_response(certificate_for_token(request, pk))
    if response is None:
        return problem(409, downloads.NO_PEM_MESSAGE)
    return response
