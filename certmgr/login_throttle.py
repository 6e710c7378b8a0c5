"""Login throttling with django-axes (settings: AXES_*; README, "Production": Login throttling).

Two limits, both over the cool-off window (AXES_COOLOFF_TIME):

* ``CERTMGR_LOGIN_FAILURE_LIMIT`` failures for one username from one client address lock that
  pair out; the same user from elsewhere, and other users from there, are unaffected.
* ``CERTMGR_LOGIN_ADDRESS_FAILURE_LIMIT`` failures from one client address, whatever the
  usernames, lock that address out for every username: one address cannot try a password
  across many accounts. It is higher, since one address may be a whole office behind NAT.

django-axes compares the failures of the lockout parameters (one username from one address,
AXES_LOCKOUT_PARAMETERS) with one number, AXES_FAILURE_LIMIT, which may be a callable of the
request: ``failure_limit`` is that callable. It answers the per-pair limit, or 0 (nothing
more is allowed, whoever logs in) while the address is over its own limit; axes then refuses
the attempt before any password is checked, and ``lockout_response`` (AXES_LOCKOUT_CALLABLE)
says which of the two locks it is.

``client_ip_address(request)`` is AXES_CLIENT_IP_CALLABLE. Reached directly, the client is
REMOTE_ADDR. Behind the TLS proxy (CERTMGR_BEHIND_PROXY), REMOTE_ADDR is the proxy, and the
client is the last X-Forwarded-For entry: the one the proxy appended itself
(``$proxy_add_x_forwarded_for`` in deploy/nginx.conf). Entries to its left come from the
client and may be forged, so they never count; one proxy hop is assumed. An entry that is not
an IP address was not appended by the proxy (which writes the peer's address), so the request
reached the application some other way and REMOTE_ADDR is its peer. An IPv6 client counts as
its /64 network: one site is handed a whole /64 (RFC 6177), so its millions of addresses are
one client, not millions of fresh chances.
"""

import ipaddress

from axes.attempts import get_cool_off_threshold
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

IPV6_SITE_PREFIX = 64


def client_ip_address(request: HttpRequest) -> str | None:
    """The address whose failed logins count together."""
    if settings.CERTMGR_BEHIND_PROXY:
        forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "")
        appended_by_proxy = _client_address(forwarded_for.rsplit(",", 1)[-1].strip())
        if appended_by_proxy:
            return appended_by_proxy
    return _client_address(request.META.get("REMOTE_ADDR", "")) or None


def _client_address(text: str) -> str:
    """`text` as the address throttling counts by ("" when it is no IP address): IPv4 as is
    (an IPv4-mapped IPv6 address as its IPv4), IPv6 as its /64 network."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_SITE_PREFIX}", strict=False)[0])
    return str(address)


def address_failures(request: HttpRequest) -> int:
    """Failed logins from the request's client address within the cool-off window, whatever
    the usernames (django-axes keeps one row per username, address and browser)."""
    address = getattr(request, "axes_ip_address", None)
    if not address:
        return 0
    total = AccessAttempt.objects.filter(
        ip_address=address, attempt_time__gte=get_cool_off_threshold(request)
    ).aggregate(total=Sum("failures_since_start"))["total"]
    return total or 0


def address_locked(request: HttpRequest) -> bool:
    return address_failures(request) >= settings.CERTMGR_LOGIN_ADDRESS_FAILURE_LIMIT


def failure_limit(request: HttpRequest, credentials: dict | None = None) -> int:
    """AXES_FAILURE_LIMIT: how many failures of this username from this address lock it out;
    0 while the address itself is locked out, so that every username is refused."""
    if address_locked(request):
        return 0
    return settings.CERTMGR_LOGIN_FAILURE_LIMIT


def lockout_response(
    request: HttpRequest, original_response=None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the locked-out page (HTTP 429), naming the username only when
    it is the pair that is locked, not the whole address."""
    locked_address = address_locked(request)
    context = {
        "address_locked": locked_address,
        "username": "" if locked_address else (get_client_username(request, credentials) or ""),
        "cooloff_timedelta": get_cool_off(request),
    }
    return render(
        request,
        settings.AXES_LOCKOUT_TEMPLATE,
        context,
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
