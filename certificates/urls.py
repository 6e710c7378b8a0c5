"""The certificates window, under /certificates/."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.certificate_list, name="certificate_list"),
    path("export.csv", views.certificate_list_export, name="certificate_list_export"),
    path("new/", views.certificate_new, name="certificate_new"),
    path("new/ssl/", views.certificate_upload_ssl, name="certificate_upload_ssl"),
    path(
        "new/apple/identity-proof/",
        views.certificate_upload_identity_proof,
        name="certificate_upload_identity_proof",
    ),
    path(
        "new/apple/merchant-identity/",
        views.certificate_upload_apple,
        {"kind": "apple_merchant_identity"},
        name="certificate_upload_merchant_identity",
    ),
    path(
        "new/apple/payment-processing/",
        views.certificate_upload_apple,
        {"kind": "apple_payment_processing"},
        name="certificate_upload_payment_processing",
    ),
    path("new/apple/csr/", views.certificate_request_new, name="certificate_request_new"),
    path(
        "requests/<int:pk>/",
        views.certificate_request_detail,
        name="certificate_request_detail",
    ),
    path(
        "requests/<int:pk>/csr/",
        views.certificate_request_csr,
        name="certificate_request_csr",
    ),
    path(
        "requests/<int:pk>/certificate/",
        views.certificate_request_complete,
        name="certificate_request_complete",
    ),
    path(
        "requests/<int:pk>/delete/",
        views.certificate_request_delete,
        name="certificate_request_delete",
    ),
    path("<int:pk>/", views.certificate_detail, name="certificate_detail"),
    path("<int:pk>/download/", views.certificate_download, name="certificate_download"),
    path("<int:pk>/delete/", views.certificate_delete, name="certificate_delete"),
]
