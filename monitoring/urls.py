"""Expiry monitoring's pages and /metrics, at the root of the back office."""

from django.urls import path

from . import metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "institutions/<slug:slug>/notifications/",
        views.institution_notifications,
        name="institution_notifications",
    ),
    path("metrics", metrics.metrics, name="metrics"),
]
