from django.urls import path

from . import views

urlpatterns = [
    path("", views.channel_list, name="channel_list"),
    path("new/", views.channel_new, name="channel_new"),
    path("<int:pk>/", views.channel_detail, name="channel_detail"),
    path("<int:pk>/status/", views.channel_status_panel, name="channel_status_panel"),
    path("<int:pk>/edit/", views.channel_edit, name="channel_edit"),
    path("<int:pk>/delete/", views.channel_delete, name="channel_delete"),
    path("<int:pk>/apple-pay/", views.channel_apple_pay, name="channel_apple_pay"),
]
