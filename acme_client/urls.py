"""Issuance pages of a sales channel, under /saleschannels/ beside saleschannels.urls."""

from django.urls import path

from . import views

urlpatterns = [
    path("<int:pk>/ssl/", views.channel_ssl, name="channel_ssl"),
    path("<int:pk>/renew/", views.channel_renew, name="channel_renew"),
]
