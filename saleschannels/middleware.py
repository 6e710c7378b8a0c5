"""Host routing (README, "Using it": Hosts).

- The back office answers on settings.CERTMGR_BACKOFFICE_HOSTS only.
- A request whose Host is a sales channel's hostname may reach /.well-known/... only (the ACME
  challenge and the Apple Pay file live there); anything else on that host is a 404. The
  channel is put on `request.sales_channel` for those views.
- Any other Host gets 400.
- `/healthz` answers on any Host, before any of this: orchestrators probe a web process by
  its own address, and the check must not need the database to route (certmgr/health.py).
- Answers on a shop hostname carry no Strict-Transport-Security: HSTS (with
  includeSubDomains) would bind the shop's whole domain for a year, and that is for the
  shop's own site to decide. The back office keeps it.

Django's own ALLOWED_HOSTS check is left open ("*") because this middleware is the one place
that decides, and it needs to look shop hostnames up in the database.
"""

from django.conf import settings
from django.http import HttpResponseBadRequest, HttpResponseNotFound
from django.http.request import split_domain_port, validate_host

from .models import SalesChannel

WELL_KNOWN_PREFIX = "/.well-known/"
HEALTH_PATH = "/healthz"


class HostRoutingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
        domain, _port = split_domain_port(host.lower())
        request.sales_channel = None
        if request.path == HEALTH_PATH:
            return self.get_response(request)
        if domain and validate_host(domain, settings.CERTMGR_BACKOFFICE_HOSTS):
            return self.get_response(request)
        channel = (
            SalesChannel.objects.filter(hostname=domain)
            .only(
                "pk",
                "hostname",
                "institution_id",
                "apple_pay_enabled",
                "apple_identity_proof_id",
                "verification_token",
            )
            .first()
            if domain
            else None
        )
        if channel is None:
            return HttpResponseBadRequest("Unknown host.", content_type="text/plain; charset=utf-8")
        if not request.path.startswith(WELL_KNOWN_PREFIX):
            return HttpResponseNotFound("Not found.", content_type="text/plain; charset=utf-8")
        request.sales_channel = channel
        response = self.get_response(request)
        # Set by SecurityMiddleware, which runs inside this middleware.
        response.headers.pop("Strict-Transport-Security", None)
        return response
