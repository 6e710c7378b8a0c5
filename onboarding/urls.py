"""Onboarding's URLs under /.well-known/ (included by certmgr/urls.py), answered on sales
channel hostnames: the HTTP ownership token (onboarding/views.py)."""

from django.urls import path, register_converter

from . import views


class TokenConverter:
    """A verification token: "certmgr-" and URL-safe base64 without padding
    (saleschannels.models.verification_token_new, RFC 4648 section 5,
    https://www.rfc-editor.org/rfc/rfc4648#section-5), at most 64 characters (the field's
    max_length). Nothing else reaches the view."""

    regex = "[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(TokenConverter, "verification_token")

urlpatterns = [
    path(
        "certmgr-challenge/<verification_token:token>",
        views.certmgr_challenge,
        name="certmgr_challenge",
    ),
]
