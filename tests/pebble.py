"""A real Pebble ACME CA (Debian's pebble 2.4) with pebble-challtestsrv as its DNS, for tests.

Contract:

* ``pebble_run(workdir=..., http_port=..., validity_seconds=None, nonce_reject_percent=None)``
  is a context manager. It writes into `workdir` a CA and a server certificate for
  ``localhost``/``127.0.0.1`` signed by it (generated with `cryptography`; keys mode 0600,
  never logged), and Pebble's JSON config. It starts ``pebble-challtestsrv`` as a DNS server
  that answers every A query with 127.0.0.1 (no AAAA, no challenge servers of its own), then
  ``pebble -config FILE -dnsserver 127.0.0.1:<dns>`` with ``PEBBLE_VA_NOSLEEP=1``. Pebble
  therefore validates HTTP-01 by connecting to 127.0.0.1:`http_port` for any name: the caller
  serves ``/.well-known/acme-challenge/`` there. Everything listens on free ports of
  127.0.0.1; every file (config, keys, logs) stays in `workdir`.
* Pebble's default 5 % nonce rejection stays on unless `nonce_reject_percent` is given
  (``PEBBLE_WFE_NONCEREJECT``; 0 turns it off). ``PEBBLE_VA_ALWAYS_VALID`` is never set (and
  dropped from the inherited environment): challenges are really validated.
  ``PEBBLE_AUTHZREUSE`` keeps its default (Pebble reuses a valid authorization of the same
  account for the same name half of the time).
* `validity_seconds` becomes ``certificateValidityPeriod`` (short-lived certificates for
  renewal tests); without it Pebble issues for its default of about five years.
* It yields a ``PebbleServer``: ``directory_url``, ``ca_bundle`` (the PEM that verifies
  Pebble's HTTPS listeners: the CA generated here, *not* the CA that signs issued
  certificates), ``management_url``, ``issuer_roots()`` (the root(s) that sign issued
  certificates, from the management interface; Pebble makes a new one at every start),
  ``orders_count()`` / ``issued_count()`` / ``http01_fetches()`` (from Pebble's log, since
  the last start, because Pebble 2.4 has no endpoint that counts orders), ``stop()`` /
  ``start()`` (Pebble only, same ports and config: its in-memory state, accounts and orders
  included, is lost), ``dns`` (the running pebble-challtestsrv, a tests.challtestsrv
  ``ChallTestSrv``: records set there are what Pebble's VA and CAA checks see) and
  ``log_path``. On exit both programs are stopped (SIGTERM, then SIGKILL) and waited for.
* Both programs are looked up with ``tests.support.require_program``: a missing one skips the
  test (fails it when CI=true) before anything starts.
* A start that does not answer within ``START_TIMEOUT`` raises RuntimeError with the log tail.

Pebble 2.4 (Debian) accepts these config keys (Go matches them case-insensitively):
listenAddress, managementListenAddress, httpPort, tlsPort, certificate, privateKey,
ocspResponderURL, externalAccountBindingRequired, externalAccountMACKeys, domainBlocklist,
certificateValidityPeriod. It has no ARI, profiles, rate limits or Retry-After: see
tests/acme_fault_proxy.py for those.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from certmgr import demo_pki
from tests.challtestsrv import ChallTestSrv, challtestsrv_start
from tests.support import (
    file_text,
    log_tail,
    ports_free,
    process_stop,
    require_program,
)

START_TIMEOUT = 20.0
# A free port can be taken by someone else before Pebble binds it; try again with new ones.
START_ATTEMPTS = 3
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class LocalTLS:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1, as PEM files."""

    ca_bundle: Path
    certificate: Path
    private_key: Path


def local_tls_write(*, directory: Path, name: str) -> LocalTLS:
    """A CA and a localhost/127.0.0.1 server certificate signed by it, written to `directory`.

    The CA key is not needed once the server certificate is signed: it is never written.
    """
    ca = demo_pki.ca_create(common_name=f"certmgr test {name} CA")
    server = demo_pki.leaf_create(issuer=ca, hostnames=["localhost", "127.0.0.1"])
    tls = LocalTLS(
        ca_bundle=directory / f"{name}-ca.pem",
        certificate=directory / f"{name}-cert.pem",
        private_key=directory / f"{name}-key.pem",
    )
    tls.ca_bundle.write_bytes(ca.certificate_pem)
    tls.certificate.write_bytes(server.certificate_pem)
    # Created 0600 before the key is written, so it is never readable by others.
    fd = os.open(tls.private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(server.key_pem)
    return tls


@dataclass
class PebbleServer:
    """A running Pebble (and its DNS): where it listens and what it did."""

    workdir: Path
    port: int
    management_port: int
    http_port: int
    tls_port: int
    dns_port: int
    config_path: Path
    log_path: Path
    ca_bundle: Path
    _program: str = field(repr=False)
    _env: dict[str, str] = field(repr=False)
    # The DNS server Pebble asks (pebble-challtestsrv), to set records through.
    dns: ChallTestSrv | None = field(default=None, repr=False)
    _process: subprocess.Popen | None = field(default=None, repr=False)
    # Where the log of the current run starts, so counts cover this run only.
    _log_offset: int = field(default=0, repr=False)

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def base_url(self) -> str:
        """Scheme and authority of Pebble's ACME URLs (what a proxy rewrites)."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.management_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts Pebble's listeners (ACME and management)."""
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def issuer_roots(self) -> list[x509.Certificate]:
        """The root(s) that sign issued certificates: /roots/0, /roots/1, ... of this run.

        Without PEBBLE_ALTERNATE_ROOTS there is exactly one. Pebble generates its issuing
        hierarchy at start, so the roots change after ``stop()`` / ``start()``.
        """
        roots = []
        for index in range(16):
            try:
                pem = self._management_get(f"/roots/{index}")
            except urllib.error.HTTPError:
                break
            roots.append(x509.load_pem_x509_certificate(pem))
        if not roots:
            raise RuntimeError(f"Pebble's management interface served no root:\n{self.log_tail()}")
        return roots

    def orders_count(self) -> int:
        """Orders Pebble created since its last start, read from its log.

        Pebble 2.4 exposes no counter (its only order listing is per account, signed by that
        account), but it logs "There are now N orders in the db" whenever it stores one.
        """
        counts = re.findall(r"There are now (\d+) orders in the db", self._run_log())
        return int(counts[-1]) if counts else 0

    def issued_count(self) -> int:
        """Certificates Pebble issued since its last start, read from its log."""
        return len(re.findall(r"Issued certificate serial \S+ for order", self._run_log()))

    def http01_fetches(self) -> list[str]:
        """The path of each HTTP-01 request Pebble's VA made since its last start, from its log.

        Pebble validates each challenge from several perspectives (3 in Pebble 2.4), each one
        request to the name's HTTP port; an authorization it reuses is not validated again.
        """
        return re.findall(r"Attempting to validate w/ HTTP: http://[^/\s]+(/\S*)", self._run_log())

    def log(self) -> str:
        """The whole log of Pebble (every run) and of its DNS server."""
        return file_text(self.log_path) + file_text(self.workdir / "challtestsrv.log")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def start(self) -> None:
        """Start Pebble again on the same ports and config; wait until it answers."""
        if self.running:
            raise RuntimeError("Pebble is already running")
        if not self._spawn():
            raise RuntimeError(
                f"Pebble did not start again on port {self.port}:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """Stop Pebble (not its DNS) and wait; what it knew is gone for good."""
        if self._process is not None:
            process_stop(self._process)
            self._process = None

    def _spawn(self) -> bool:
        """Start Pebble and wait until it answers; False when it exited (a port was taken)."""
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            # Pebble logs to stdout, Go panics go to stderr: both to the log.
            self._process = subprocess.Popen(
                [
                    self._program,
                    "-config",
                    str(self.config_path),
                    "-dnsserver",
                    f"127.0.0.1:{self.dns_port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if self._answers():
                return True
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"Pebble did not answer within {START_TIMEOUT:g} s on port {self.port}:\n"
            f"{self.log_tail()}"
        )

    def _answers(self) -> bool:
        """Both the directory and the management interface answer over verified HTTPS."""
        try:
            with urllib.request.urlopen(
                self.directory_url, context=self.ssl_context(), timeout=1
            ) as response:
                json.load(response)
            self._management_get("/roots/0")
        except (OSError, ValueError):
            return False
        return True

    def _management_get(self, path: str) -> bytes:
        with urllib.request.urlopen(
            self.management_url + path, context=self.ssl_context(), timeout=5
        ) as response:
            return response.read()

    def _run_log(self) -> str:
        with suppress(FileNotFoundError), self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")
        return ""


@contextmanager
def pebble_run(
    *,
    workdir: Path,
    http_port: int,
    validity_seconds: int | None = None,
    nonce_reject_percent: int | None = None,
    eab_keys: dict[str, str] | None = None,
) -> Iterator[PebbleServer]:
    """Start pebble-challtestsrv and Pebble, yield the PebbleServer, stop both."""
    pebble_program = require_program("pebble")
    dns_program = require_program("pebble-challtestsrv")
    workdir.mkdir(parents=True, exist_ok=True)
    tls = local_tls_write(directory=workdir, name="pebble-api")

    env = {key: value for key, value in os.environ.items() if not key.startswith("PEBBLE_")}
    # The VA otherwise sleeps up to 15 s before each validation.
    env["PEBBLE_VA_NOSLEEP"] = "1"
    if nonce_reject_percent is not None:
        env["PEBBLE_WFE_NONCEREJECT"] = str(nonce_reject_percent)

    dns: tuple[subprocess.Popen, ChallTestSrv] | None = None
    pebble: PebbleServer | None = None
    try:
        for _attempt in range(START_ATTEMPTS):
            dns = _dns_start(dns_program, workdir=workdir)
            if dns is not None:
                break
        else:
            raise RuntimeError(
                f"pebble-challtestsrv did not start:\n{log_tail(workdir / 'challtestsrv.log')}"
            )
        for _attempt in range(START_ATTEMPTS):
            pebble = _pebble_prepare(
                pebble_program,
                workdir=workdir,
                tls=tls,
                env=env,
                http_port=http_port,
                dns=dns[1],
                validity_seconds=validity_seconds,
                eab_keys=eab_keys,
            )
            if pebble._spawn():
                break
        else:
            raise RuntimeError(f"Pebble did not start:\n{pebble.log_tail()}")
        yield pebble
    finally:
        if pebble is not None:
            pebble.stop()
        if dns is not None:
            process_stop(dns[0])


def _pebble_prepare(
    program: str,
    *,
    workdir: Path,
    tls: LocalTLS,
    env: dict[str, str],
    http_port: int,
    dns: ChallTestSrv,
    validity_seconds: int | None,
    eab_keys: dict[str, str] | None = None,
) -> PebbleServer:
    """Write the config for fresh ports; the PebbleServer is not started yet."""
    port, management_port, tls_port = ports_free(
        3, avoid={http_port, dns.dns_port, dns.management_port}
    )
    settings: dict[str, object] = {
        "listenAddress": f"127.0.0.1:{port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(tls.certificate),
        "privateKey": str(tls.private_key),
        "httpPort": http_port,
        # Nobody listens there: TLS-ALPN-01 is not offered to be answered in these tests.
        "tlsPort": tls_port,
        # Empty: issued certificates carry no OCSP URL.
        "ocspResponderURL": "",
        # With eab_keys (key id -> base64url HMAC key), accounts need external binding.
        "externalAccountBindingRequired": bool(eab_keys),
    }
    if eab_keys:
        settings["externalAccountMACKeys"] = eab_keys
    if validity_seconds is not None:
        settings["certificateValidityPeriod"] = validity_seconds
    config_path = workdir / "pebble-config.json"
    config_path.write_text(json.dumps({"pebble": settings}, indent=2))
    return PebbleServer(
        workdir=workdir,
        port=port,
        management_port=management_port,
        http_port=http_port,
        tls_port=tls_port,
        dns_port=dns.dns_port,
        config_path=config_path,
        log_path=workdir / "pebble.log",
        ca_bundle=tls.ca_bundle,
        _program=program,
        _env=env,
        dns=dns,
    )


def _dns_start(program: str, *, workdir: Path) -> tuple[subprocess.Popen, ChallTestSrv] | None:
    """pebble-challtestsrv as a DNS server only, or None when it exited (port taken)."""
    # Every A query gets 127.0.0.1 and AAAA gets nothing, so Pebble's VA reaches the test's
    # own HTTP server for any name. The challenge servers of its own are disabled: the
    # caller answers HTTP-01 itself on Pebble's httpPort.
    return challtestsrv_start(program, workdir=workdir, default_ipv4="127.0.0.1", default_ipv6="")
