"""/api/v1/apple-pay/: Apple Pay's files over HTTP (README, "API"), through the pages' forms
and services (certificates/views.py, certificates/apple.py): the identity proof, merchant
identity and payment processing certificates that exist, and the key-and-CSR flow (create,
download the CSR, complete with Apple's .cer, delete while pending). The key never leaves."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from certificates import downloads, services
from certificates.forms import (
    AppleCertificateUploadForm,
    CertificateRequestCompleteForm,
    CertificateRequestForm,
    IdentityProofUploadForm,
)
from certificates.models import Certificate
from institutions.permissions import require_manager_somewhere

from .access import (
    certificate_for_token,
    form_data,
    form_refuse,
    request_for_token,
    require_manager,
    token_institution,
)
from .etags import etag_on_reads
from .presenters import certificate_request_present
from .problems import Conflict
from .serializers import (
    AppleCertificateUploadSerializer,
    CertificateRequestCompleteSerializer,
    CertificateRequestInputSerializer,
    CertificateRequestSerializer,
    CertificateSerializer,
    IdentityProofUploadSerializer,
)
from .views_certificates import certificate_detail_present


def _stored(request, certificate: Certificate) -> Response:
    certificate = certificate_for_token(request, certificate.pk)
    return Response(CertificateSerializer(certificate_detail_present(certificate)).data, status=201)


@extend_schema(
    operation_id="apple_identity_proof_upload",
    request={"multipart/form-data": IdentityProofUploadSerializer},
    responses={201: CertificateSerializer},
)
@api_view(["POST"])
@parser_classes([MultiPartParser])
def identity_proof_upload(request):
    """The domain-association file, kept byte for byte, its expiry typed."""
    require_manager_somewhere(request.user, to="upload certificates")
    institution = token_institution(request)
    form = IdentityProofUploadForm(
        form_data(request, institution=institution.pk),
        request.FILES,
        user=request.user,
        now=timezone.now(),
    )
    if not form.is_valid():
        raise form_refuse(form)
    certificate = form.save(actor=request.user)
    return _stored(request, certificate)


def _apple_upload(request, kind: str):
    require_manager_somewhere(request.user, to="upload certificates")
    now = timezone.now()
    institution = token_institution(request)
    form = AppleCertificateUploadForm(
        form_data(request, institution=institution.pk),
        request.FILES,
        user=request.user,
        now=now,
        kind=kind,
    )
    if not form.is_valid():
        raise form_refuse(form)
    certificate = form.save(actor=request.user)
    return _stored(request, certificate)


_APPLE_UPLOAD_SCHEMA = {
    "request": {"multipart/form-data": AppleCertificateUploadSerializer},
    "responses": {201: CertificateSerializer},
}


@extend_schema(operation_id="apple_merchant_identity_upload", **_APPLE_UPLOAD_SCHEMA)
@api_view(["POST"])
@parser_classes([MultiPartParser])
def merchant_identity_upload(request):
    """Apple's merchant identity certificate (RSA 2048) with its key, or a .p12."""
    return _apple_upload(request, Certificate.Kind.APPLE_MERCHANT_IDENTITY)


@extend_schema(operation_id="apple_payment_processing_upload", **_APPLE_UPLOAD_SCHEMA)
@api_view(["POST"])
@parser_classes([MultiPartParser])
def payment_processing_upload(request):
    """Apple's payment processing certificate (EC P-256) with its key, or a .p12."""
    return _apple_upload(request, Certificate.Kind.APPLE_PAYMENT_PROCESSING)


@extend_schema(
    operation_id="apple_csr_create",
    request=CertificateRequestInputSerializer,
    responses={201: CertificateRequestSerializer},
)
@api_view(["POST"])
@parser_classes([JSONParser])
def certificate_request_create(request):
    """Let certmgr create the key and the CSR Apple asks for."""
    require_manager_somewhere(request.user, to="upload certificates")
    institution = token_institution(request)
    form = CertificateRequestForm(form_data(request, institution=institution.pk), user=request.user)
    if not form.is_valid():
        raise form_refuse(form)
    certificate_request = form.save(actor=request.user)
    certificate_request = request_for_token(request, certificate_request.pk)
    return Response(
        CertificateRequestSerializer(certificate_request_present(certificate_request)).data,
        status=201,
    )


@extend_schema(
    methods=["GET"], operation_id="apple_csr_retrieve", responses=CertificateRequestSerializer
)
@extend_schema(methods=["DELETE"], operation_id="apple_csr_delete", responses={204: None})
@etag_on_reads
@api_view(["GET", "DELETE"])
def certificate_request_detail(request, pk: int):
    certificate_request = request_for_token(request, pk)
    if request.method == "GET":
        return Response(
            CertificateRequestSerializer(certificate_request_present(certificate_request)).data
        )
    require_manager(request.user, certificate_request.institution, to="delete a CSR")
    if not certificate_request.is_pending:
        raise Conflict("This request is completed; delete its certificate instead.")
    try:
        services.certificate_request_delete(request=certificate_request, actor=request.user)
    except services.RequestCompletedError as error:
        raise Conflict(str(error)) from None
    return Response(status=204)


@extend_schema(
    operation_id="apple_csr_download",
    responses={
        (200, "application/pkcs10"): OpenApiResponse(
            OpenApiTypes.STR, description="The CSR (PEM) as Apple's portal takes it."
        )
    },
)
@etag_on_reads
@api_view(["GET"])
def certificate_request_csr(request, pk: int):
    """The CSR as the .certSigningRequest file; never the key."""
    return downloads.csr_download_response(request_for_token(request, pk))


@extend_schema(
    operation_id="apple_csr_complete",
    request={"multipart/form-data": CertificateRequestCompleteSerializer},
    responses={201: CertificateSerializer},
)
@api_view(["POST"])
@parser_classes([MultiPartParser])
def certificate_request_complete(request, pk: int):
    """Apple's certificate for a pending request: paired with the request's key and stored."""
    certificate_request = request_for_token(request, pk)
    require_manager(request.user, certificate_request.institution)
    if not certificate_request.is_pending:
        raise Conflict("A certificate was already uploaded for this request.")
    now = timezone.now()
    form = CertificateRequestCompleteForm(
        form_data(request), request.FILES, request=certificate_request, now=now
    )
    if not form.is_valid():
        raise form_refuse(form)
    try:
        certificate = services.certificate_request_complete(
            request=certificate_request, bundle=form.bundle, actor=request.user, now=now
        )
    except services.RequestCompletedError as error:
        raise Conflict(str(error)) from None
    return _stored(request, certificate)
