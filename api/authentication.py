"""Token authentication of the API (README, "API"): `Authorization: Bearer <secret>`.

The authenticated principal is not a user: it carries the token's institution and role as an
`institution_scope` (institutions/models.py), so every queryset (`visible_to`) and role check
(`require_manager`) the pages use gives it that institution only, and the audit trail records
the token's name (core/audit.py). No session authentication on the API: a browser's cookie
opens nothing there, so there is no CSRF question.
"""

from django.utils import timezone
from rest_framework import authentication, exceptions

from institutions.models import InstitutionScope

from . import tokens
from .models import ApiToken

INVALID = "Invalid, expired or revoked token."
# last_used_at is written at most this often per token (seconds): not a write per request.
LAST_USED_RESOLUTION = 60


class ApiPrincipal:
    """Who calls the API: a token acting for one institution with one role."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: ApiToken):
        self.token = token
        self.token_id = token.pk
        self.token_name = token.name
        self.institution_scope = InstitutionScope(
            institution_id=token.institution_id, role=token.role
        )

    def get_username(self) -> str:
        return f"API token {self.token_name}"

    def __str__(self) -> str:
        return self.get_username()


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(INVALID)
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID) from None
        return self.authenticate_secret(secret)

    def authenticate_secret(self, secret: str):
        now = timezone.now()
        token = (
            ApiToken.objects.filter(secret_sha256=tokens.secret_hash(secret))
            .select_related("institution")
            .first()
        )
        # The lookup found the row by its hash; the comparison is made again in constant time
        # so that no timing of the database's index compare matters.
        if token is None or not tokens.secret_matches(secret, token.secret_sha256):
            raise exceptions.AuthenticationFailed(INVALID)
        if not token.is_usable(now):
            raise exceptions.AuthenticationFailed(INVALID)
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > (
            LAST_USED_RESOLUTION
        ):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return ApiPrincipal(token), token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'
