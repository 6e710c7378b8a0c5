"""URL map of the back office."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from acme_client.views import acme_challenge
from saleschannels.views_wellknown import apple_domain_association

from . import health, metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("certificates/", views.certificate_list, name="certificate_list"),
    path("certificates/new/", views.certificate_new, name="certificate_new"),
    path("certificates/new/ssl/", views.certificate_upload_ssl, name="certificate_upload_ssl"),
    path(
        "certificates/new/apple/identity-proof/",
        views.certificate_upload_identity_proof,
        name="certificate_upload_identity_proof",
    ),
    path(
        "certificates/new/apple/merchant-identity/",
        views.certificate_upload_apple,
        {"kind": "apple_merchant_identity"},
        name="certificate_upload_merchant_identity",
    ),
    path(
        "certificates/new/apple/payment-processing/",
        views.certificate_upload_apple,
        {"kind": "apple_payment_processing"},
        name="certificate_upload_payment_processing",
    ),
    path(
        "certificates/new/apple/csr/", views.certificate_request_new, name="certificate_request_new"
    ),
    path(
        "certificates/requests/<int:pk>/",
        views.certificate_request_detail,
        name="certificate_request_detail",
    ),
    path(
        "certificates/requests/<int:pk>/csr/",
        views.certificate_request_csr,
        name="certificate_request_csr",
    ),
    path(
        "certificates/requests/<int:pk>/certificate/",
        views.certificate_request_complete,
        name="certificate_request_complete",
    ),
    path(
        "certificates/requests/<int:pk>/delete/",
        views.certificate_request_delete,
        name="certificate_request_delete",
    ),
    path("certificates/<int:pk>/", views.certificate_detail, name="certificate_detail"),
    path(
        "certificates/<int:pk>/download/", views.certificate_download, name="certificate_download"
    ),
    path("certificates/<int:pk>/delete/", views.certificate_delete, name="certificate_delete"),
    path("saleschannels/", include("saleschannels.urls")),
    path("institutions/", include("institutions.urls")),
    path("admin/", admin.site.urls),
    path("metrics", metrics.metrics, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path(".well-known/acme-challenge/<str:token>", acme_challenge, name="acme_challenge"),
    path(
        ".well-known/apple-developer-merchantid-domain-association",
        apple_domain_association,
        name="apple_domain_association",
    ),
]
