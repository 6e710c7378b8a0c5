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
* Settings (CERTMGR_PROBE_ADDRESS, CERTMGR_PROBE_TIMEOUT) are read when called.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .models import ProbeStatus, SalesChannel

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
    """Probe one channel, record what was seen on it, return the status."""
    if channel.ssl_mode == SalesChannel.SslMode.NONE:
        return _probe_reset(channel)
    attempt = _probe_attempt_function()
    return _probe_record(channel, attempt(channel.hostname), now=now or timezone.now())


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
    if not channels:
        return counts
    attempt = _probe_attempt_function()
    with ThreadPoolExecutor(max_workers=min(PROBE_WORKERS, len(channels))) as pool:
        # map() yields in order as results arrive; each is recorded here, in this thread.
        outcomes = pool.map(attempt, [channel.hostname for channel in channels])
        for channel, outcome in zip(channels, outcomes, strict=True):
            status = _probe_record(channel, outcome, now=timezone.now())
            counts[status.value] += 1
    return counts


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
