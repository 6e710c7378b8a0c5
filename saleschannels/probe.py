"""The live TLS probe: what certificate does the edge really serve for each channel's hostname?

Contract:

* ``probe_served_certificate()`` connects over TCP to an address ("host:port", "[v6]:port")
  or to the hostname on port 443, does a TLS handshake with SNI = hostname and returns the
  peer's leaf certificate. Nothing is verified: the probe reports what is served, trusted or
  not. Any failure (refused, timeout, DNS, handshake) raises ProbeError with a plain message.
* ``channel_probe()`` probes one channel and records the outcome on it with
  ``save(update_fields=...)``: FAILED when the probe failed, EXPIRED when the served leaf is
  past its not_after, OK when its SHA-256 fingerprint equals the active certificate's, else
  MISMATCH (also when something is served for a channel without an active certificate).
  A channel with SSL mode ``none`` is not probed; its probe fields are reset.
* ``channels_probe()`` probes many channels with a small thread pool. Only the network
  handshakes run in the pool; every database read and write stays in the calling thread, so
  no thread opens a connection of its own (and tests inside a transaction see the same data).
* Apple Pay: for channels with Apple Pay enabled (whatever their SSL mode: Apple fetches over
  HTTPS), both also fetch ``https://<hostname>/.well-known/apple-developer-merchantid-domain-
  association`` the way Apple does (same address, SNI and Host = hostname, no verification,
  no redirect followed) and record on the channel (``apple_probe_*``) whether the answer was
  200 with exactly the bytes of the proof the app serves for it; the reason in plain words
  otherwise. Channels without Apple Pay get those fields cleared. channels_probe()'s counts
  stay the TLS ones.
* Settings (CERTMGR_PROBE_ADDRESS, CERTMGR_PROBE_TIMEOUT) are read when called.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from certificates.apple import WELL_KNOWN_PATH as APPLE_WELL_KNOWN_PATH
from certificates.models import Certificate

from .models import ProbeStatus, SalesChannel
from .selectors import channel_identity_proof

# Probes wait on the network, not the CPU; 8 keeps a slow edge from being hammered.
PROBE_WORKERS = 8
HTTPS_PORT = 443
PROBE_FIELDS = [
    "probe_status",
    "probe_checked_at",
    "probe_fingerprint",
    "probe_expires_at",
    "probe_error",
]
APPLE_PROBE_FIELDS = ["apple_probe_ok", "apple_probe_checked_at", "apple_probe_error"]
# A domain-association file is a few KiB; reading more than this proves it is not the file.
APPLE_MAX_BYTES = 64 * 1024 + 1
# The statuses a probe can produce, reported by channels_probe() even when zero.
PROBE_OUTCOMES = (ProbeStatus.OK, ProbeStatus.MISMATCH, ProbeStatus.EXPIRED, ProbeStatus.FAILED)


# What OpenSSL's terse reasons mean for an operator looking at a webshop.
_NO_CERTIFICATE = ": the server has no usable certificate for this name"
_HANDSHAKE_MEANINGS = {
    # nginx cannot load <hostname>.crt/.key (missing, unreadable, key does not match)
    "TLSV1_ALERT_INTERNAL_ERROR": _NO_CERTIFICATE,
    # nginx's ssl_reject_handshake, or a server that does not know the name
    "TLSV1_UNRECOGNIZED_NAME": _NO_CERTIFICATE,
    "TLSV1_ALERT_UNRECOGNIZED_NAME": _NO_CERTIFICATE,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": _NO_CERTIFICATE,
    "WRONG_VERSION_NUMBER": ": the port does not speak TLS (plain HTTP?)",
    "UNSUPPORTED_PROTOCOL": ": the server only offers an outdated TLS version",
}


class ProbeError(Exception):
    """The handshake did not produce a certificate; the message says why in plain words."""


def probe_served_certificate(
    *, hostname: str, address: str | None = None, timeout: float
) -> x509.Certificate:
    """The leaf certificate served for `hostname` (SNI) at `address`, default hostname:443."""
    host, port = address_parse(address) if address else (hostname, HTTPS_PORT)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    context = _context_unverified()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ConnectionRefusedError:
        raise ProbeError(f"Connection refused by {where}: nothing listens there.") from None
    except TimeoutError:
        raise ProbeError(f"No answer from {where} within {timeout:g} s.") from None
    except socket.gaierror:
        raise ProbeError(f"The name {host} does not resolve (DNS).") from None
    except (ConnectionResetError, ConnectionAbortedError):
        raise ProbeError(
            f"{where} closed the connection during the TLS handshake for {hostname}."
        ) from None
    except ssl.SSLError as error:
        reason = error.reason or error.strerror or str(error)
        meaning = _HANDSHAKE_MEANINGS.get(reason, "")
        raise ProbeError(
            f"TLS handshake for {hostname} at {where} failed ({reason}){meaning}."
        ) from None
    except OSError as error:
        raise ProbeError(f"Could not talk to {where}: {error.strerror or error}.") from None
    if not der:
        raise ProbeError(f"{where} completed the handshake without sending a certificate.")
    return x509.load_der_x509_certificate(der)


def address_parse(address: str) -> tuple[str, int]:
    """("host", port) from "host:port" or "[v6 address]:port"; ValueError when malformed."""
    text = address.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"expected [address]:port, got {address!r}")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or ":" in host:
            raise ValueError(f"expected host:port, got {address!r}")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected host:port with a port from 1 to 65535, got {address!r}")
    return host, int(port_text)


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint as "AB:CD:...", the format of Certificate.fingerprint_sha256."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def channel_probe(channel: SalesChannel, *, now: datetime | None = None) -> ProbeStatus:
    """Probe one channel (and its Apple Pay file), record what was seen on it, return the
    TLS status."""
    channel_apple_probe(channel, now=now)
    if channel.ssl_mode == SalesChannel.SslMode.NONE:
        return _probe_reset(channel)
    attempt = _probe_attempt_function()
    return _probe_record(channel, attempt(channel.hostname), now=now or timezone.now())


def channel_apple_probe(channel: SalesChannel, *, now: datetime | None = None) -> bool | None:
    """Fetch the channel's Apple Pay file through the edge and record whether it is right;
    None (and the fields cleared) when Apple Pay is off on the channel."""
    if not channel.apple_pay_enabled:
        return _apple_probe_reset(channel)
    now = now or timezone.now()
    expected = _apple_expected(channel, now)
    outcome = None if expected is None else _apple_fetch_function()(channel.hostname)
    return _apple_probe_record(channel, expected, outcome, now=now)


def channels_probe(queryset: QuerySet[SalesChannel] | None = None) -> dict[str, int]:
    """Probe every channel of `queryset` (default all) that uses SSL; count per status.

    Channels of the queryset with SSL mode ``none`` get their stale probe fields cleared.
    """
    queryset = SalesChannel.objects.all() if queryset is None else queryset
    queryset.filter(ssl_mode=SalesChannel.SslMode.NONE).exclude(
        probe_status=ProbeStatus.UNKNOWN, probe_checked_at=None
    ).update(**_reset_values())
    channels = list(
        queryset.exclude(ssl_mode=SalesChannel.SslMode.NONE).select_related("active_certificate")
    )
    counts = {status.value: 0 for status in PROBE_OUTCOMES}
    if channels:
        attempt = _probe_attempt_function()
        with ThreadPoolExecutor(max_workers=min(PROBE_WORKERS, len(channels))) as pool:
            # map() yields in order as results arrive; each is recorded here, in this thread.
            outcomes = pool.map(attempt, [channel.hostname for channel in channels])
            for channel, outcome in zip(channels, outcomes, strict=True):
                status = _probe_record(channel, outcome, now=timezone.now())
                counts[status.value] += 1
    channels_apple_probe(queryset)
    return counts


def channels_apple_probe(queryset: QuerySet[SalesChannel]) -> dict[str, int]:
    """Fetch the Apple Pay file of every channel of `queryset` with Apple Pay enabled, in the
    pool; clear the Apple probe fields of the others. Counts {"ok": n, "failed": m}."""
    queryset.filter(apple_pay_enabled=False).exclude(
        apple_probe_ok=None, apple_probe_checked_at=None, apple_probe_error=""
    ).update(**_apple_reset_values())
    now = timezone.now()
    channels = list(queryset.filter(apple_pay_enabled=True))
    expected = [_apple_expected(channel, now) for channel in channels]
    to_fetch = [c.hostname for c, proof in zip(channels, expected, strict=True) if proof]
    counts = {"ok": 0, "failed": 0}
    if not channels:
        return counts
    fetched = {}
    if to_fetch:
        fetch = _apple_fetch_function()
        with ThreadPoolExecutor(max_workers=min(PROBE_WORKERS, len(to_fetch))) as pool:
            fetched = dict(zip(to_fetch, pool.map(fetch, to_fetch), strict=True))
    for channel, proof in zip(channels, expected, strict=True):
        ok = _apple_probe_record(channel, proof, fetched.get(channel.hostname), now=timezone.now())
        counts["ok" if ok else "failed"] += 1
    return counts


@dataclass(frozen=True)
class AppleFetchResult:
    """What the edge answered for the Apple Pay file: the HTTP status, the body (at most
    APPLE_MAX_BYTES) and where a redirect pointed."""

    status: int
    body: bytes = field(repr=False)
    location: str = ""


def apple_file_fetch(
    *, hostname: str, address: str | None = None, timeout: float
) -> AppleFetchResult:
    """GET the Apple Pay file of `hostname` over HTTPS at `address` (default hostname:443),
    with SNI and Host = hostname, nothing verified and no redirect followed, as Apple's
    crawler would; ProbeError when no HTTP answer came."""
    host, port = address_parse(address) if address else (hostname, HTTPS_PORT)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    connection = http.client.HTTPSConnection(hostname, HTTPS_PORT, timeout=timeout)
    try:
        # Connect to the address ourselves: http.client would use the Host name for both the
        # TCP connection and the SNI; the request's Host header stays `hostname`.
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            connection.sock = _context_unverified().wrap_socket(raw, server_hostname=hostname)
        except BaseException:
            raw.close()
            raise
        connection.request("GET", APPLE_WELL_KNOWN_PATH, headers={"User-Agent": "certmgr-probe"})
        response = connection.getresponse()
        body = response.read(APPLE_MAX_BYTES)
        return AppleFetchResult(response.status, body, response.getheader("Location") or "")
    except ConnectionRefusedError:
        raise ProbeError(f"Connection refused by {where}: nothing listens there.") from None
    except TimeoutError:
        raise ProbeError(f"No answer from {where} within {timeout:g} s.") from None
    except socket.gaierror:
        raise ProbeError(f"The name {host} does not resolve (DNS).") from None
    except ssl.SSLError as error:
        reason = error.reason or error.strerror or str(error)
        meaning = _HANDSHAKE_MEANINGS.get(reason, "")
        raise ProbeError(
            f"TLS handshake for {hostname} at {where} failed ({reason}){meaning}."
        ) from None
    except (http.client.HTTPException, OSError) as error:
        raise ProbeError(
            f"No valid HTTP answer from {where} for {hostname}: "
            f"{getattr(error, 'strerror', None) or error or type(error).__name__}."
        ) from None
    finally:
        connection.close()


def _context_unverified() -> ssl.SSLContext:
    # We report what is served, trusted or not: a self-signed or expired leaf must come back.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _probe_attempt_function() -> Callable[[str], x509.Certificate | ProbeError]:
    """hostname -> served certificate or the ProbeError, with today's settings bound in.

    Returning the error instead of raising lets a pool hand every outcome back in order.
    """
    address = settings.CERTMGR_PROBE_ADDRESS or None
    if address:
        address_parse(address)  # a malformed setting fails here, before any probe
    timeout = float(settings.CERTMGR_PROBE_TIMEOUT)
    return partial(_probe_attempt, address=address, timeout=timeout)


def _probe_attempt(
    hostname: str, *, address: str | None, timeout: float
) -> x509.Certificate | ProbeError:
    try:
        return probe_served_certificate(hostname=hostname, address=address, timeout=timeout)
    except ProbeError as error:
        return error


def _probe_record(
    channel: SalesChannel, outcome: x509.Certificate | ProbeError, *, now: datetime
) -> ProbeStatus:
    channel.probe_checked_at = now
    if isinstance(outcome, ProbeError):
        channel.probe_status = ProbeStatus.FAILED
        channel.probe_fingerprint = ""
        channel.probe_expires_at = None
        channel.probe_error = str(outcome)
    else:
        served = certificate_fingerprint(outcome)
        channel.probe_fingerprint = served
        channel.probe_expires_at = outcome.not_valid_after_utc
        channel.probe_error = ""
        channel.probe_status = _status_for(
            channel, served=served, served_expires_at=channel.probe_expires_at, now=now
        )
    channel.save(update_fields=PROBE_FIELDS)
    return ProbeStatus(channel.probe_status)


def _status_for(
    channel: SalesChannel, *, served: str, served_expires_at: datetime, now: datetime
) -> ProbeStatus:
    if served_expires_at < now:
        return ProbeStatus.EXPIRED
    active = channel.active_certificate if channel.active_certificate_id else None
    if active is not None and active.fingerprint_sha256 == served:
        return ProbeStatus.OK
    return ProbeStatus.MISMATCH


def _apple_fetch_function() -> Callable[[str], AppleFetchResult | ProbeError]:
    """hostname -> the edge's answer for the Apple Pay file or the ProbeError."""
    address = settings.CERTMGR_PROBE_ADDRESS or None
    if address:
        address_parse(address)
    timeout = float(settings.CERTMGR_PROBE_TIMEOUT)
    return partial(_apple_fetch_attempt, address=address, timeout=timeout)


def _apple_fetch_attempt(
    hostname: str, *, address: str | None, timeout: float
) -> AppleFetchResult | ProbeError:
    try:
        return apple_file_fetch(hostname=hostname, address=address, timeout=timeout)
    except ProbeError as error:
        return error


def _apple_expected(channel: SalesChannel, now: datetime) -> Certificate | None:
    """The identity proof the app serves for the channel (None: nothing is served)."""
    return channel_identity_proof(channel, now)


def _apple_probe_record(
    channel: SalesChannel,
    proof: Certificate | None,
    outcome: AppleFetchResult | ProbeError | None,
    *,
    now: datetime,
) -> bool:
    url = channel.apple_well_known_url
    if proof is None:
        ok, error = (
            False,
            (
                "No valid identity proof to serve: "
                + (
                    "the one chosen for this channel has expired."
                    if channel.apple_identity_proof_id
                    else "upload the institution's domain-association file."
                )
            ),
        )
    elif isinstance(outcome, ProbeError) or outcome is None:
        ok, error = False, f"Could not fetch {url}: {outcome}"
    elif 300 <= outcome.status < 400:
        ok, error = (
            False,
            (
                f"{url} answered {outcome.status} (redirect to {outcome.location or '?'}): "
                "Apple does not follow redirects."
            ),
        )
    elif outcome.status != 200:
        ok, error = False, f"{url} answered HTTP {outcome.status} instead of the file."
    elif outcome.body != bytes(proof.content):
        ok, error = (
            False,
            (
                f"{url} serves other content ({len(outcome.body)} bytes) than the identity proof "
                f"“{proof.name}” ({len(proof.content)} bytes)."
            ),
        )
    else:
        ok, error = True, ""
    channel.apple_probe_ok = ok
    channel.apple_probe_checked_at = now
    channel.apple_probe_error = error
    channel.save(update_fields=APPLE_PROBE_FIELDS)
    return ok


def _apple_reset_values() -> dict:
    return {"apple_probe_ok": None, "apple_probe_checked_at": None, "apple_probe_error": ""}


def _apple_probe_reset(channel: SalesChannel) -> None:
    if channel.apple_probe_ok is None and channel.apple_probe_checked_at is None:
        return None
    for name, value in _apple_reset_values().items():
        setattr(channel, name, value)
    channel.save(update_fields=APPLE_PROBE_FIELDS)
    return None


def _reset_values() -> dict:
    return {
        "probe_status": ProbeStatus.UNKNOWN,
        "probe_checked_at": None,
        "probe_fingerprint": "",
        "probe_expires_at": None,
        "probe_error": "",
    }


def _probe_reset(channel: SalesChannel) -> ProbeStatus:
    for name, value in _reset_values().items():
        setattr(channel, name, value)
    channel.save(update_fields=PROBE_FIELDS)
    return ProbeStatus.UNKNOWN
