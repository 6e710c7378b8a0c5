from django.urls import path

from . import views

urlpatterns = [
    path("", views.institution_list, name="institution_list"),
    path(
        "<slug:slug>/notifications/",
        views.institution_notifications,
        name="institution_notifications",
    ),
]
