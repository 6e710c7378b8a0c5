"""URL map of the back office."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from acme_client.views import acme_challenge

from . import metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("certificates/", views.certificate_list, name="certificate_list"),
    path("certificates/new/", views.certificate_new, name="certificate_new"),
    path("certificates/new/ssl/", views.certificate_upload_ssl, name="certificate_upload_ssl"),
    path("certificates/<int:pk>/", views.certificate_detail, name="certificate_detail"),
    path(
        "certificates/<int:pk>/download/", views.certificate_download, name="certificate_download"
    ),
    path("certificates/<int:pk>/delete/", views.certificate_delete, name="certificate_delete"),
    path("saleschannels/", include("saleschannels.urls")),
    path("institutions/", include("institutions.urls")),
    path("admin/", admin.site.urls),
    path("metrics", metrics.metrics, name="metrics"),
    path(".well-known/acme-challenge/<str:token>", acme_challenge, name="acme_challenge"),
]
