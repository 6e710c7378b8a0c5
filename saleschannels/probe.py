"""The live TLS probe: what certificate does the edge really serve for each channel's hostname?

Contract:

* ``probe_served_certificate()`` connects over TCP and does a TLS handshake with SNI =
  hostname, and returns the peer's leaf certificate. Nothing is verified: the probe reports
  what is served, trusted or not. Where it connects: to ``address`` ("host:port",
  "[v6]:port": the operator's own edge, CERTMGR_PROBE_ADDRESS) when given; else the hostname
  is resolved once, every address it resolves to must be public (core.addresses, the rule the
  webhooks follow: a tenant's name pointing at an internal service is never connected to) and
  the connection goes, by IP, to one of those checked addresses on port 443, so a name that
  answers otherwise the second time (DNS rebinding) gets nowhere. Any failure raises ProbeError,
  whose ``failure`` is a typed reason (models.ProbeFailure) and whose message has the details.
* ``channel_probe()`` probes one channel and records the outcome on it with
  ``save(update_fields=...)``: FAILED (with the reason in ``probe_failure``) when the probe
  failed, EXPIRED when the served leaf is past its not_after, OK when its SHA-256 fingerprint
  equals the active certificate's, else MISMATCH (also when something is served for a channel
  without an active certificate). A channel with SSL mode ``none`` is not probed; its probe
  fields are reset. Only typed reasons are stored and shown (fixed plain words); the details
  (addresses, the TLS library's reason, what a server answered) go to the log.
* ``channels_probe()`` probes many channels with a small thread pool. Only the network
  handshakes run in the pool; every database read and write stays in the calling thread, so
  no thread opens a connection of its own (and tests inside a transaction see the same data).
* Apple Pay: for channels with Apple Pay enabled (whatever their SSL mode: Apple fetches over
  HTTPS), both also fetch ``https://<hostname>/.well-known/apple-developer-merchantid-domain-
  association`` the way Apple does (same connection rule, SNI and Host = hostname, no
  verification, no redirect followed) and record on the channel (``apple_probe_*``) whether
  the answer was 200 with exactly the bytes of the proof the app serves for it, the typed
  reason otherwise (a redirect's Location is logged, never stored). Channels without Apple
  Pay get those fields cleared. channels_probe()'s counts stay the TLS ones.
* Settings (CERTMGR_PROBE_ADDRESS, CERTMGR_PROBE_TIMEOUT) are read when called.
"""

from __future__ import annotations

import http.client
import logging
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
from core.addresses import addresses_not_public

from .models import ProbeFailure, ProbeStatus, SalesChannel
from .selectors import channel_identity_proof

logger = logging.getLogger(__name__)

# Probes wait on the network, not the CPU; 8 keeps a slow edge from being hammered.
PROBE_WORKERS = 8
HTTPS_PORT = 443
PROBE_FIELDS = [
    "probe_status",
    "probe_checked_at",
    "probe_fingerprint",
    "probe_expires_at",
    "probe_failure",
]
APPLE_PROBE_FIELDS = ["apple_probe_ok", "apple_probe_checked_at", "apple_probe_failure"]
# A domain-association file is a few KiB; reading more than this proves it is not the file.
APPLE_MAX_BYTES = 64 * 1024 + 1
# The statuses a probe can produce, reported by channels_probe() even when zero.
PROBE_OUTCOMES = (ProbeStatus.OK, ProbeStatus.MISMATCH, ProbeStatus.EXPIRED, ProbeStatus.FAILED)
# A name may resolve to many addresses, each costing up to a timeout when it does not answer:
# the probe tries the first few the resolver gives (an IPv6 route down falls back to IPv4).
PROBE_ADDRESSES_TRIED = 3
# How much of a server's answer (a redirect's Location) the log keeps.
LOGGED_ANSWER_MAX = 200


# What OpenSSL's terse reasons mean for an operator looking at a webshop.
_NO_CERTIFICATE = ": the server has no usable certificate for this name"
_HANDSHAKE_MEANINGS = {
    # nginx cannot load <hostname>.crt/.key (missing, unreadable, key does not match)
    "TLSV1_ALERT_INTERNAL_ERROR": (ProbeFailure.NO_CERTIFICATE, _NO_CERTIFICATE),
    # nginx's ssl_reject_handshake, or a server that does not know the name
    "TLSV1_UNRECOGNIZED_NAME": (ProbeFailure.NO_CERTIFICATE, _NO_CERTIFICATE),
    "TLSV1_ALERT_UNRECOGNIZED_NAME": (ProbeFailure.NO_CERTIFICATE, _NO_CERTIFICATE),
    "SSLV3_ALERT_HANDSHAKE_FAILURE": (ProbeFailure.NO_CERTIFICATE, _NO_CERTIFICATE),
    "WRONG_VERSION_NUMBER": (ProbeFailure.NOT_TLS, ": the port does not speak TLS (plain HTTP?)"),
    "UNSUPPORTED_PROTOCOL": (
        ProbeFailure.OLD_TLS,
        ": the server only offers an outdated TLS version",
    ),
}


class ProbeError(Exception):
    """The probe did not get its answer. ``failure`` says why as a typed reason, the one
    recorded and shown (fixed plain words); the message says it with the details (where,
    the TLS library's reason), for the log and for callers that print it."""

    def __init__(self, failure: ProbeFailure, detail: str):
        super().__init__(detail)
        self.failure = failure


def probe_served_certificate(
    *, hostname: str, address: str | None = None, timeout: float
) -> x509.Certificate:
    """The leaf certificate served for `hostname` (SNI) at `address`, else at a checked
    public address of `hostname`, port 443 (the module's contract)."""
    raw, where = _connect(hostname, address=address, timeout=timeout)
    try:
        with raw, _context_unverified().wrap_socket(raw, server_hostname=hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError as error:
        raise _probe_error(error, hostname=hostname, where=where, timeout=timeout) from None
    if not der:
        raise ProbeError(
            ProbeFailure.NO_PEER_CERTIFICATE,
            f"{where} completed the handshake without sending a certificate.",
        )
    return x509.load_der_x509_certificate(der)


def _connect(hostname: str, *, address: str | None, timeout: float) -> tuple[socket.socket, str]:
    """A TCP connection to probe `hostname` through, and where it goes ("host:port").

    To `address` when given (the operator's edge: connected to as configured). Otherwise the
    hostname is resolved here, once; any address that is not public refuses the whole name
    (as a webhook's), and the connection goes to the first of the checked addresses that
    accepts it, by IP: nothing resolves the name again.
    """
    if address:
        host, port = address_parse(address)
        where = _where(host, port)
        try:
            return socket.create_connection((host, port), timeout=timeout), where
        except OSError as error:
            raise _probe_error(error, hostname=hostname, where=where, timeout=timeout) from None
    try:
        found = socket.getaddrinfo(
            hostname, HTTPS_PORT, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        found = []
    if not found:
        raise ProbeError(ProbeFailure.DNS, f"The name {hostname} does not resolve (DNS).")
    internal = addresses_not_public(entry[4][0] for entry in found)
    if internal:
        raise ProbeError(
            ProbeFailure.INTERNAL_ADDRESS,
            f"{hostname} resolves to internal addresses ({', '.join(internal)}): not connected.",
        )
    error = where = None
    for family, kind, protocol, _, socket_address in found[:PROBE_ADDRESSES_TRIED]:
        where = _where(socket_address[0], socket_address[1])
        connection = socket.socket(family, kind, protocol)
        try:
            connection.settimeout(timeout)
            connection.connect(socket_address)
            return connection, where
        except OSError as refused:
            connection.close()
            error = refused
    raise _probe_error(error, hostname=hostname, where=where, timeout=timeout) from None


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _probe_error(error: Exception, *, hostname: str, where: str, timeout: float) -> ProbeError:
    """The ProbeError for what a connection, handshake or HTTP exchange raised."""
    if isinstance(error, ssl.SSLEOFError):
        return ProbeError(
            ProbeFailure.CLOSED,
            f"{where} closed the connection during the TLS handshake for {hostname}.",
        )
    if isinstance(error, ssl.SSLError):
        reason = error.reason or error.strerror or str(error)
        failure, meaning = _HANDSHAKE_MEANINGS.get(reason, (ProbeFailure.HANDSHAKE, ""))
        return ProbeError(
            failure, f"TLS handshake for {hostname} at {where} failed ({reason}){meaning}."
        )
    if isinstance(error, ConnectionRefusedError):
        return ProbeError(
            ProbeFailure.REFUSED, f"Connection refused by {where}: nothing listens there."
        )
    if isinstance(error, TimeoutError):
        return ProbeError(ProbeFailure.TIMEOUT, f"No answer from {where} within {timeout:g} s.")
    if isinstance(error, socket.gaierror):
        return ProbeError(ProbeFailure.DNS, f"The address {where} does not resolve (DNS).")
    if isinstance(error, http.client.HTTPException):  # RemoteDisconnected too
        return ProbeError(
            ProbeFailure.HTTP_INVALID,
            f"No valid HTTP answer from {where} for {hostname}: {type(error).__name__}.",
        )
    if isinstance(error, ConnectionResetError | ConnectionAbortedError):
        return ProbeError(
            ProbeFailure.CLOSED,
            f"{where} closed the connection during the TLS handshake for {hostname}.",
        )
    detail = getattr(error, "strerror", None) or error or type(error).__name__
    return ProbeError(ProbeFailure.NETWORK, f"Could not talk to {where}: {detail}.")


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
        apple_probe_ok=None, apple_probe_checked_at=None, apple_probe_failure=""
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
    APPLE_MAX_BYTES) and where a redirect pointed (for the log only: never stored)."""

    status: int
    body: bytes = field(repr=False)
    location: str = ""


def apple_file_fetch(
    *, hostname: str, address: str | None = None, timeout: float
) -> AppleFetchResult:
    """GET the Apple Pay file of `hostname` over HTTPS, connected as probe_served_certificate()
    is (to `address`, else to a checked public address of the hostname), with SNI and Host =
    hostname, nothing verified and no redirect followed, as Apple's crawler would; ProbeError
    when no HTTP answer came."""
    raw, where = _connect(hostname, address=address, timeout=timeout)
    # The socket is ours: http.client would resolve the name itself, for the TCP connection
    # and the SNI alike; the request's Host header stays `hostname`.
    connection = http.client.HTTPSConnection(hostname, HTTPS_PORT, timeout=timeout)
    try:
        try:
            connection.sock = _context_unverified().wrap_socket(raw, server_hostname=hostname)
        except BaseException:
            raw.close()
            raise
        connection.request("GET", APPLE_WELL_KNOWN_PATH, headers={"User-Agent": "certmgr-probe"})
        response = connection.getresponse()
        body = response.read(APPLE_MAX_BYTES)
        return AppleFetchResult(response.status, body, response.getheader("Location") or "")
    except (http.client.HTTPException, OSError) as error:
        raise _probe_error(error, hostname=hostname, where=where, timeout=timeout) from None
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
        _log_failure("probe", channel, outcome)
        channel.probe_status = ProbeStatus.FAILED
        channel.probe_fingerprint = ""
        channel.probe_expires_at = None
        channel.probe_failure = outcome.failure
    else:
        served = certificate_fingerprint(outcome)
        channel.probe_fingerprint = served
        channel.probe_expires_at = outcome.not_valid_after_utc
        channel.probe_failure = ProbeFailure.NONE
        channel.probe_status = _status_for(
            channel, served=served, served_expires_at=channel.probe_expires_at, now=now
        )
    if channel.probe_status == ProbeStatus.OK:
        channel.probe_verified_at = now
        channel.save(update_fields=[*PROBE_FIELDS, "probe_verified_at"])
    else:
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
    if channel.hostname_verified_at is None:
        return None
    return channel_identity_proof(channel, now)


def _apple_probe_record(
    channel: SalesChannel,
    proof: Certificate | None,
    outcome: AppleFetchResult | ProbeError | None,
    *,
    now: datetime,
) -> bool:
    failure = _apple_failure(channel, proof, outcome)
    ok = failure == ProbeFailure.NONE
    channel.apple_probe_ok = ok
    channel.apple_probe_checked_at = now
    channel.apple_probe_failure = failure
    channel.save(update_fields=APPLE_PROBE_FIELDS)
    return ok


def _apple_failure(
    channel: SalesChannel,
    proof: Certificate | None,
    outcome: AppleFetchResult | ProbeError | None,
) -> ProbeFailure:
    """Why the Apple Pay file is not right (NONE when it is); what the server answered is
    logged here and nowhere else."""
    if channel.hostname_verified_at is None:  # not served before the name is proved
        return ProbeFailure.UNVERIFIED
    if proof is None:  # nothing is served: the chosen proof expired, or there is none
        if channel.apple_identity_proof_id:
            return ProbeFailure.PROOF_EXPIRED
        return ProbeFailure.NO_PROOF
    if outcome is None:
        return ProbeFailure.OTHER
    if isinstance(outcome, ProbeError):
        _log_failure("Apple Pay probe", channel, outcome)
        return outcome.failure
    if outcome.status == 200 and outcome.body == bytes(proof.content):
        return ProbeFailure.NONE
    logger.info(
        "Apple Pay probe: %s answered HTTP %s (%s bytes%s) instead of the identity proof %s",
        channel.hostname,
        outcome.status,
        len(outcome.body),
        f", Location {outcome.location[:LOGGED_ANSWER_MAX]!r}" if outcome.location else "",
        proof.pk,
    )
    if 300 <= outcome.status < 400:
        return ProbeFailure.REDIRECT
    if outcome.status == 404:
        return ProbeFailure.FILE_MISSING
    if outcome.status != 200:
        return ProbeFailure.HTTP_ERROR
    return ProbeFailure.OTHER_CONTENT


def _log_failure(what: str, channel: SalesChannel, error: ProbeError) -> None:
    # A tenant's name pointing inside the platform is worth an operator's look.
    internal = error.failure == ProbeFailure.INTERNAL_ADDRESS
    log = logger.warning if internal else logger.info
    log("%s of %s failed (%s): %s", what, channel.hostname, error.failure.value, error)


def _apple_reset_values() -> dict:
    return {"apple_probe_ok": None, "apple_probe_checked_at": None, "apple_probe_failure": ""}


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
        "probe_failure": "",
    }


def _probe_reset(channel: SalesChannel) -> ProbeStatus:
    for name, value in _reset_values().items():
        setattr(channel, name, value)
    channel.save(update_fields=PROBE_FIELDS)
    return ProbeStatus.UNKNOWN
