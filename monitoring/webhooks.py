"""The webhook client: a JSON POST to the address a manager typed, from inside the platform,
so it must never reach an internal address (README, "Configuration":
CERTMGR_WEBHOOK_ALLOW_PRIVATE). Which addresses are internal is core.addresses' rule, the one
the live probe of sales channels follows too.

The host name is resolved once per attempt, every address is checked, and the POST goes to a
checked address (urllib3, with the name kept for Host, SNI and the certificate check): a name
that answers otherwise the second time (DNS rebinding) gets nowhere. Redirects are not
followed and the answer's body is not read.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import certifi
from django.conf import settings
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util import make_headers

from core.addresses import addresses_not_public

from .signing import message_id_new, signature_headers

logger = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT = 5.0
# Seconds to wait before the 2nd and the 3rd attempt.
WEBHOOK_BACKOFF = (1.0, 3.0)


def webhook_address_refusal(url: str, *, resolve: bool) -> str:
    """Why certmgr will not POST to `url`, or "" when it may.

    A webhook is a URL a manager types, and the worker fetches it from inside the platform:
    pointed at a loopback, private, link-local or otherwise non-public address (IPv6 forms
    carrying such an IPv4 address included: core.addresses) it would reach internal services
    (server-side request forgery). Refused unless
    CERTMGR_WEBHOOK_ALLOW_PRIVATE (tests, a chat server on the same network). With `resolve`,
    every address the host name resolves to is checked (at send time); without, only a
    literal address or "localhost" (when the form is saved: the name may not resolve there).
    """
    return _webhook_addresses(url, resolve=resolve)[0]


def _webhook_addresses(url: str, *, resolve: bool) -> tuple[str, list[str]]:
    """(why `url` is refused or "", the addresses checked: those to connect to)."""
    parsed = urlsplit(url)
    host = (parsed.hostname or "").rstrip(".").lower()
    if parsed.scheme not in ("http", "https") or not host:
        return "not an http(s) URL", []
    try:
        parsed.port  # noqa: B018 (it raises for a port out of range)
    except ValueError:
        return "the port is not a valid one", []
    allow_private = settings.CERTMGR_WEBHOOK_ALLOW_PRIVATE
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        return f"{host} is this machine", []
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return "", []
        try:
            found = socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)
        except OSError:
            return "", []  # the POST fails on its own, with "could not connect"
        addresses = list(
            dict.fromkeys(ipaddress.ip_address(entry[4][0].split("%")[0]) for entry in found)
        )
    internal = addresses_not_public(addresses)
    if internal and not allow_private:
        return f"{host} is an internal address ({', '.join(internal)}), refused", []
    return "", [str(address) for address in addresses]


@dataclass(frozen=True)
class WebhookResult:
    """What a POST came to: `error` is "" when delivered, else webhook_post's words;
    `reason` names what failed (Reason), `status` is the last HTTP answer's, if any."""

    error: str = ""
    reason: str = ""
    status: int | None = None
    attempts: int = 0

    @property
    def delivered(self) -> bool:
        return not self.error


class Reason:
    """What a webhook POST failed on (WebhookResult.reason)."""

    REFUSED_ADDRESS = "refused_address"  # webhook_address_refusal said no
    UNRESOLVED = "unresolved"  # the name has no address
    CONNECTION_REFUSED = "connection_refused"  # nothing listens there
    NO_CONNECTION = "no_connection"  # unreachable, or the connection broke off
    TLS = "tls"  # the TLS handshake or the certificate check failed
    TIMEOUT = "timeout"
    STATUS = "status"  # answered, not with 2xx
    REQUEST_FAILED = "request_failed"


def webhook_post(url: str, payload: dict, *, secrets: Sequence[str] = ()) -> str:
    """POST `payload` as JSON, with WEBHOOK_ATTEMPTS tries; "" when delivered, else why not.

    A 4xx answer (other than 429) is final. The URL is not repeated in the error: chat tools
    put their secret in it. Internal addresses are refused (webhook_address_refusal), and the
    POST goes to the very address that was checked (a name answering differently the second
    time, DNS rebinding, changes nothing); redirects are not followed. Each attempt is signed
    with `secrets` (the institution's: signing.py), one message id for all attempts.
    """
    return webhook_send(url, payload, secrets=secrets).error


def webhook_send(
    url: str, payload: dict, *, secrets: Sequence[str] = (), attempts: int = WEBHOOK_ATTEMPTS
) -> WebhookResult:
    """webhook_post with what it came to (WebhookResult) and its number of tries."""
    body = json.dumps(payload).encode()
    message_id = message_id_new()
    error, reason, status = "", "", None
    for attempt in range(attempts):
        if attempt:
            time.sleep(WEBHOOK_BACKOFF[min(attempt, len(WEBHOOK_BACKOFF)) - 1])
        refusal, addresses = _webhook_addresses(url, resolve=True)
        if refusal:
            return WebhookResult(refusal, Reason.REFUSED_ADDRESS, attempts=attempt + 1)
        if not addresses:
            error, reason = "could not connect", Reason.UNRESOLVED
            continue
        signed = signature_headers(secrets, body, message_id=message_id, at=datetime.now(UTC))
        try:
            status = _webhook_post_to_any(url, addresses, body, signed)
        except NewConnectionError as exception:
            refused = isinstance(exception.__cause__, ConnectionRefusedError)
            error = "could not connect"
            reason = Reason.CONNECTION_REFUSED if refused else Reason.NO_CONNECTION
            continue
        except Urllib3TimeoutError:
            error, reason = f"no answer within {WEBHOOK_TIMEOUT:g} s", Reason.TIMEOUT
            continue
        except SSLError:
            error, reason = "could not connect", Reason.TLS
            continue
        except ProtocolError:
            error, reason = "could not connect", Reason.NO_CONNECTION
            continue
        except HTTPError as exception:
            error = f"request failed ({exception.__class__.__name__})"
            return WebhookResult(error, Reason.REQUEST_FAILED, attempts=attempt + 1)
        if status < 300:
            return WebhookResult(status=status, attempts=attempt + 1)
        error, reason = f"HTTP {status}", Reason.STATUS
        if status < 500 and status != 429:
            break
    tries = attempt + 1
    return WebhookResult(
        f"{error} after {tries} attempt{'' if tries == 1 else 's'}",
        reason,
        status if reason == Reason.STATUS else None,
        tries,
    )


def _webhook_post_to_any(url: str, addresses: list[str], body: bytes, signed: dict) -> int:
    """POST to the first of `addresses` that accepts the connection, in the resolver's order
    (an unreachable IPv6 address falls back to IPv4, as a plain connection would)."""
    for address in addresses[:-1]:
        try:
            return _webhook_post_to(url, address, body, signed)
        except NewConnectionError:
            continue
    return _webhook_post_to(url, addresses[-1], body, signed)


def _webhook_post_to(url: str, address: str, body: bytes, signed: dict) -> int:
    """POST `body` to `url` at `address` (the host's name still given as Host, and checked
    against its TLS certificate); returns the HTTP status."""
    parsed = urlsplit(url)
    host = (parsed.hostname or "").rstrip(".")
    headers = {
        "Host": parsed.netloc.rpartition("@")[2],
        "Content-Type": "application/json",
        "User-Agent": "certmgr",
        **signed,
    }
    if parsed.username is not None:
        credentials = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
        headers.update(make_headers(basic_auth=credentials))
    options = {"timeout": Timeout(connect=WEBHOOK_TIMEOUT, read=WEBHOOK_TIMEOUT), "retries": False}
    if parsed.scheme == "https":
        pool = HTTPSConnectionPool(
            address,
            parsed.port or 443,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = HTTPConnectionPool(address, parsed.port or 80, **options)
    target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    with pool:  # closed without reading the answer's body: only its status matters
        response = pool.urlopen(
            "POST",
            target,
            body=body,
            headers=headers,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
        )
        return response.status
