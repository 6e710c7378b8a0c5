"""A request budget per API token (README, "API": CERTMGR_API_THROTTLE_RATE), DRF's
SimpleRateThrottle keyed by the token's id: one busy integration never slows another. Read
at each request, so a test or an operator may change it without a restart."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    scope = "api_token"

    def get_rate(self) -> str | None:
        return settings.CERTMGR_API_THROTTLE_RATE or None

    def allow_request(self, request, view) -> bool:
        # The rate is read per request (the base class reads it once, at construction).
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        token = getattr(request.user, "token", None)
        if token is None:
            return None
        # The id, and the start of the secret's hash: an id of a deleted row may be given
        # again (SQLite), and the new token must not inherit the old one's history.
        ident = f"{token.pk}.{token.secret_sha256[:12]}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
