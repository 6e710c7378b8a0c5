"""Login throttling with django-axes (settings: AXES_*): the client address it counts by.

``client_ip_address(request)`` is AXES_CLIENT_IP_CALLABLE. Reached directly, the client is
REMOTE_ADDR. Behind the TLS proxy (CERTMGR_BEHIND_PROXY), REMOTE_ADDR is the proxy, and the
client is the last X-Forwarded-For entry: the one the proxy appended itself
(``$proxy_add_x_forwarded_for`` in deploy/nginx.conf). Entries to its left come from the
client and may be forged, so they never count; one proxy hop is assumed.
"""

from django.conf import settings
from django.http import HttpRequest


def client_ip_address(request: HttpRequest) -> str | None:
    """The address whose failed logins count together."""
    if settings.CERTMGR_BEHIND_PROXY:
        forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "")
        appended_by_proxy = forwarded_for.rsplit(",", 1)[-1].strip()
        if appended_by_proxy:
            return appended_by_proxy
    return request.META.get("REMOTE_ADDR")
