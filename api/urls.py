"""/api/v1/ (README, "API"), under the namespace `api`."""

from django.urls import path, re_path

from . import schema, views_apple, views_certificates, views_channels, views_errors

app_name = "api"

urlpatterns = [
    path("schema/", schema.schema_view, name="schema"),
    path("docs/", schema.docs_view, name="docs"),
    path("channels/", views_channels.channel_list, name="channel_list"),
    path("channels/<int:pk>/", views_channels.channel_detail, name="channel_detail"),
    path("channels/<int:pk>/status/", views_channels.channel_status, name="channel_status"),
    path("channels/<int:pk>/ssl/", views_channels.channel_ssl, name="channel_ssl"),
    path("channels/<int:pk>/verify/", views_channels.channel_verify, name="channel_verify"),
    path("channels/<int:pk>/check/", views_channels.channel_check, name="channel_check"),
    path("channels/<int:pk>/renew/", views_channels.channel_renew, name="channel_renew"),
    path(
        "channels/<int:pk>/apple-pay/", views_channels.channel_apple_pay, name="channel_apple_pay"
    ),
    path("certificates/", views_certificates.certificate_list, name="certificate_list"),
    path(
        "certificates/<int:pk>/", views_certificates.certificate_detail, name="certificate_detail"
    ),
    path(
        "certificates/<int:pk>/chain.pem",
        views_certificates.certificate_download,
        name="certificate_download",
    ),
    path(
        "apple-pay/identity-proofs/",
        views_apple.identity_proof_upload,
        name="identity_proof_upload",
    ),
    path(
        "apple-pay/merchant-identity/",
        views_apple.merchant_identity_upload,
        name="merchant_identity_upload",
    ),
    path(
        "apple-pay/payment-processing/",
        views_apple.payment_processing_upload,
        name="payment_processing_upload",
    ),
    path("apple-pay/csrs/", views_apple.certificate_request_create, name="csr_create"),
    path("apple-pay/csrs/<int:pk>/", views_apple.certificate_request_detail, name="csr_detail"),
    path("apple-pay/csrs/<int:pk>/csr/", views_apple.certificate_request_csr, name="csr_download"),
    path(
        "apple-pay/csrs/<int:pk>/certificate/",
        views_apple.certificate_request_complete,
        name="csr_complete",
    ),
    # Last: whatever else is asked under /api/v1/.
    re_path(r"^", views_errors.not_found, name="not_found"),
]
