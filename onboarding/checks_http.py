"""The HTTP checks of onboarding with the settings filled in (README, "Onboarding a hostname").

* ``http01_self_check()``: the pre-flight HTTP-01 check, fetching
  ``http://<hostname>/.well-known/acme-challenge/<token>`` as the CA will (RFC 8555, section
  8.3, https://www.rfc-editor.org/rfc/rfc8555#section-8.3), expecting the key authorization.
* ``http_token_verify()``: proof of ownership by HTTP, fetching the channel's
  ``/.well-known/certmgr-challenge/<token>`` (answered by onboarding/views.py once the name
  points at the edge), expecting the token.

Both go through onboarding/http.py's ``ca_fetch()`` on ACME_HTTP01_PORT, following https://
redirects to ACME_HTTP01_TLS_PORT only, within CERTMGR_PROBE_TIMEOUT per connection. Names are
resolved with the resolver of onboarding/dns.py (CERTMGR_DNS_RESOLVERS, else the system's),
CNAME chains included; a connection may go to a public address (core.addresses) or to one of
CERTMGR_EDGE_ADDRESSES (the platform's own edge, which may be private in a staging network).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

from core.addresses import address_is_public
from saleschannels.findings import Check, Finding
from saleschannels.models import VERIFICATION_HTTP_PREFIX

from .dns import AddressAnswer, addresses_lookup, edge_check, name_make, name_text
from .http import LookupFailed, ca_fetch
from .resolving import resolver

ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


def http01_self_check(
    hostname: str, token: str, key_authorization: str, *, looked_up: AddressAnswer | None = None
) -> Finding:
    """Fetch the HTTP-01 token as the CA will: HTTP_OK when `key_authorization` answers.

    `looked_up`, the hostname's addresses as the DNS check just found them, saves asking DNS
    again for the first connection (a redirect to another name still asks)."""
    return _fetch(
        hostname=hostname,
        path=f"{ACME_CHALLENGE_PREFIX}{token}",
        check=Check.HTTP,
        expected=key_authorization.encode(),
        resolve=_resolve_knowing(looked_up),
    )


def _resolve_knowing(looked_up: AddressAnswer | None):
    """addresses_resolve, answering the name `looked_up` is about from it when it succeeded."""
    if looked_up is None or looked_up.failure is not None or not looked_up.addresses:
        return addresses_resolve

    def resolve(name: str) -> list[str]:
        try:
            known = name_text(name_make(name)) == looked_up.hostname
        except ValueError:
            known = False
        return list(looked_up.addresses) if known else addresses_resolve(name)

    return resolve


def http_token_verify(channel) -> Finding:
    """Fetch the channel's ownership token: HTTP_TOKEN_FOUND when it answers, else
    HTTP_TOKEN_WRONG (or the connection's failure, an HTTP_* or DNS_* reason)."""
    return _fetch(
        hostname=channel.hostname,
        path=f"{VERIFICATION_HTTP_PREFIX}{channel.verification_token}",
        check=Check.HTTP_TOKEN,
        expected=channel.verification_token.encode(),
    )


def _fetch(*, hostname: str, path: str, check: Check, expected: bytes, resolve=None) -> Finding:
    return ca_fetch(
        hostname=hostname,
        path=path,
        port=settings.ACME_HTTP01_PORT,
        https_port=settings.ACME_HTTP01_TLS_PORT,
        resolve=resolve or addresses_resolve,
        address_allowed=address_allowed,
        timeout=settings.CERTMGR_PROBE_TIMEOUT,
        check=check,
        expected=expected,
    )


def addresses_resolve(name: str) -> list[str]:
    """The addresses of `name` (at the end of its CNAME chain), as ca_fetch's `resolve`.

    A failure raises LookupFailed with the DNS finding's reason and parameters, the
    platform's edge among them for the advice (onboarding/dns.py's edge_check).
    """
    answer = addresses_lookup(resolver(), name)
    if answer.failure is None:
        return list(answer.addresses)
    finding = edge_check(
        answer,
        edge_addresses=settings.CERTMGR_EDGE_ADDRESSES,
        edge_cname=settings.CERTMGR_EDGE_CNAME,
    )
    # A chain that reaches the edge's name passes the DNS check, but has no address here.
    params = (
        finding.params
        if finding.reason == answer.failure
        else {"hostname": answer.hostname, "name": answer.failed_name or answer.hostname}
    )
    raise LookupFailed(answer.failure, params)


def address_allowed(address: str) -> bool:
    """Whether certmgr may connect to `address`: a public one, or one of the edge's, which
    are CERTMGR_EDGE_ADDRESSES and whatever CERTMGR_EDGE_CNAME resolves to (both the
    operator's, so an edge on a private network is reached by either rule)."""
    if address_is_public(address):
        return True
    try:
        found = ipaddress.ip_address(address)
    except ValueError:
        return False
    edge = [str(edge).strip() for edge in settings.CERTMGR_EDGE_ADDRESSES]
    if any(found == ipaddress.ip_address(known) for known in edge):
        return True
    return any(found == ipaddress.ip_address(known) for known in _edge_cname_addresses())


def _edge_cname_addresses() -> list[str]:
    """The addresses of CERTMGR_EDGE_CNAME, looked up when a non-public address is met."""
    if not settings.CERTMGR_EDGE_CNAME:
        return []
    return list(addresses_lookup(resolver(), settings.CERTMGR_EDGE_CNAME).addresses)
