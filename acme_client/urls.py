"""Issuance pages of a sales channel, under /saleschannels/ beside saleschannels.urls."""

from django.urls import path

from . import views, views_import

urlpatterns = [
    path("import/", views_import.channel_import, name="channel_import"),
    path("<int:pk>/ssl/", views.channel_ssl, name="channel_ssl"),
    path("<int:pk>/renew/", views.channel_renew, name="channel_renew"),
    path("<int:pk>/verify/", views.channel_verify, name="channel_verify"),
    path("<int:pk>/check/", views.channel_check, name="channel_check"),
]
