"""URL map of the back office: each app's urls.py, the login, the admin, /healthz, and the
/.well-known/ paths answered on sales channel hostnames (saleschannels.middleware): the ACME
challenge, the HTTP ownership token (onboarding/urls.py) and the Apple Pay file."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from acme_client.views import acme_challenge
from saleschannels.views_wellknown import apple_domain_association

from . import health

urlpatterns = [
    path("", include("monitoring.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("certificates/", include("certificates.urls")),
    path("saleschannels/", include("saleschannels.urls")),
    path("saleschannels/", include("acme_client.urls")),
    path("institutions/", include("institutions.urls")),
    path("institutions/", include("api.urls_pages")),
    path("api/v1/", include("api.urls")),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path(".well-known/acme-challenge/<str:token>", acme_challenge, name="acme_challenge"),
    path(".well-known/", include("onboarding.urls")),
    path(
        ".well-known/apple-developer-merchantid-domain-association",
        apple_domain_association,
        name="apple_domain_association",
    ),
]
