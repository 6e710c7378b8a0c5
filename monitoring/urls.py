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
    path(
        "institutions/<slug:slug>/notifications/test-email/",
        views.institution_notification_test_email,
        name="institution_notification_test_email",
    ),
    path(
        "institutions/<slug:slug>/notifications/test-webhook/",
        views.institution_notification_test_webhook,
        name="institution_notification_test_webhook",
    ),
    path(
        "institutions/<slug:slug>/notifications/signing-secret/",
        views.institution_webhook_secret_rotate,
        name="institution_webhook_secret_rotate",
    ),
    path("history/", views.history_list, name="history"),
    path("metrics", metrics.metrics, name="metrics"),
]
