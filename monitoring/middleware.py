"""Alert state for every back-office page.

The middleware attaches `request.certificate_alerts`, a lazy object: the one aggregate query
runs only when a page actually renders the banner (templates/base.html), so downloads, JSON,
redirects and static files cost nothing. Paths that are not back-office pages get None.
"""

from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from .alerts import certificate_alerts

# Paths that never show the banner: Apple and ACME fetches, monitoring, assets.
EXCLUDED_PREFIXES = ("/.well-known/", "/metrics", "/static/", "/healthz")


class CertificateAlertMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.certificate_alerts = None
        user = getattr(request, "user", None)
        if not request.path.startswith(EXCLUDED_PREFIXES) and user is not None:
            request.certificate_alerts = SimpleLazyObject(
                lambda: (
                    certificate_alerts(user=request.user, now=timezone.now())
                    if request.user.is_authenticated
                    else None
                )
            )
        return self.get_response(request)
