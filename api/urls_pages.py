"""The back-office pages of the API's tokens, under /institutions/ (README, "API")."""

from django.urls import path

from . import views_tokens

urlpatterns = [
    path("<slug:slug>/api-tokens/", views_tokens.api_tokens, name="api_tokens"),
    path(
        "<slug:slug>/api-tokens/<int:pk>/revoke/",
        views_tokens.api_token_revoke,
        name="api_token_revoke",
    ),
]
