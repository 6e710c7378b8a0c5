"""pebble-challtestsrv (Debian's pebble 2.4) as a real DNS server whose records tests set.

Contract:

* ``challtestsrv_run(workdir, default_ipv4="", default_ipv6="")`` is a context manager: it
  starts ``pebble-challtestsrv`` as a DNS server only (UDP and TCP on a free port of
  127.0.0.1, its challenge servers off), logging to ``workdir/challtestsrv.log``, yields a
  ``ChallTestSrv`` and stops the program (SIGTERM, then SIGKILL) on exit. The program is
  looked up with ``tests.support.require_program``: missing, the test is skipped (failed
  under CI=true). ``tests/pebble.py`` starts its DNS server with ``challtestsrv_start`` too,
  and exposes it as ``PebbleServer.dns``.
* ``ChallTestSrv`` drives the management API over HTTP: ``dns_address`` ("127.0.0.1:<port>",
  an entry for ``onboarding.dns.resolver_make``), ``a_set`` / ``aaaa_set`` / ``cname_set`` /
  ``caa_set`` / ``txt_set`` / ``txt_add`` / ``servfail_set``, their ``*_clear`` and
  ``default_ipv4_set`` / ``default_ipv6_set``. A refused request raises RuntimeError.

How the server answers (checked against the 2.4 binary):

* Names are matched exactly, case included: use lowercase names (certmgr asks lowercase).
  A name given without the trailing dot gets one.
* Every answer is NOERROR, except SERVFAIL for a name set with ``servfail_set`` (every query
  type) and NOTIMP for types other than A, AAAA, CNAME, TXT and CAA. It never answers
  NXDOMAIN: a name without records has an empty answer (NODATA).
* An A query for a name without A records is answered with the default IPv4 address, AAAA
  likewise with the default IPv6 one. ``challtestsrv_run`` clears both by default, so such
  a name has no address; Pebble's DNS keeps 127.0.0.1 for A (tests/pebble.py).
* A CNAME is followed one level: the answer holds the CNAME and the target's records of the
  asked type (only its CNAME, when the target is a CNAME itself), so a resolver that wants a
  longer chain asks again for the target, as onboarding/dns.py does.
* CAA records always carry flags 0: the management API takes a tag and a value per policy
  and ignores any flag field, so a critical property cannot be served (``caa_set`` refuses
  non-zero flags rather than silently dropping them).
* Records are added, not replaced, by the API: the ``*_set`` methods clear the name first.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import log_tail, port_open, ports_free, process_stop, require_program

START_TIMEOUT = 20.0
# A free port can be taken by someone else before the program binds it: try new ones.
START_ATTEMPTS = 3
LOG_NAME = "challtestsrv.log"


def _fqdn(host: str) -> str:
    return host if host.endswith(".") else f"{host}."


@dataclass(frozen=True)
class ChallTestSrv:
    """A running pebble-challtestsrv: its DNS port and its management API."""

    dns_port: int
    management_port: int

    @property
    def dns_address(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def a_set(self, host: str, addresses: list[str]) -> None:
        """The A records of `host` become `addresses` (none: the default IPv4, if any)."""
        self.a_clear(host)
        if addresses:
            self._post("/add-a", {"host": _fqdn(host), "addresses": list(addresses)})

    def a_clear(self, host: str) -> None:
        self._post("/clear-a", {"host": _fqdn(host)})

    def aaaa_set(self, host: str, addresses: list[str]) -> None:
        """The AAAA records of `host` become `addresses` (none: the default IPv6, if any)."""
        self.aaaa_clear(host)
        if addresses:
            self._post("/add-aaaa", {"host": _fqdn(host), "addresses": list(addresses)})

    def aaaa_clear(self, host: str) -> None:
        self._post("/clear-aaaa", {"host": _fqdn(host)})

    def cname_set(self, host: str, target: str) -> None:
        self._post("/set-cname", {"host": _fqdn(host), "target": _fqdn(target)})

    def cname_clear(self, host: str) -> None:
        self._post("/clear-cname", {"host": _fqdn(host)})

    def caa_set(self, host: str, policies: list[tuple]) -> None:
        """The CAA records of `host` become `policies`: (tag, value) or (flags, tag, value).

        The server serves flags 0 only; non-zero flags raise ValueError (see the module).
        """
        items = []
        for policy in policies:
            flags, tag, value = policy if len(policy) == 3 else (0, *policy)
            if flags:
                raise ValueError("pebble-challtestsrv 2.4 cannot serve CAA flags (always 0)")
            items.append({"tag": tag, "value": value})
        self.caa_clear(host)
        if items:
            self._post("/add-caa", {"host": _fqdn(host), "policies": items})

    def caa_clear(self, host: str) -> None:
        self._post("/clear-caa", {"host": _fqdn(host)})

    def txt_set(self, host: str, value: str) -> None:
        """`host` gets one TXT record, `value` (one string, at most 255 bytes)."""
        self.txt_clear(host)
        self.txt_add(host, value)

    def txt_add(self, host: str, value: str) -> None:
        """One more TXT record for `host` (the server refuses an empty value)."""
        self._post("/set-txt", {"host": _fqdn(host), "value": value})

    def txt_clear(self, host: str) -> None:
        self._post("/clear-txt", {"host": _fqdn(host)})

    def servfail_set(self, host: str) -> None:
        """Every query for `host` (exactly that name) is answered SERVFAIL."""
        self._post("/set-servfail", {"host": _fqdn(host)})

    def servfail_clear(self, host: str) -> None:
        self._post("/clear-servfail", {"host": _fqdn(host)})

    def default_ipv4_set(self, address: str) -> None:
        """The A answer of names without A records; "" for none."""
        self._post("/set-default-ipv4", {"ip": address})

    def default_ipv6_set(self, address: str) -> None:
        """The AAAA answer of names without AAAA records; "" for none."""
        self._post("/set-default-ipv6", {"ip": address})

    def _post(self, path: str, body: dict) -> None:
        request = urllib.request.Request(
            self.management_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(
                f"pebble-challtestsrv refused POST {path} {body}: HTTP {error.code}"
            ) from None


def challtestsrv_start(
    program: str, *, workdir: Path, default_ipv4: str, default_ipv6: str
) -> tuple[subprocess.Popen, ChallTestSrv] | None:
    """Start pebble-challtestsrv on free ports; None when it exited (a port was taken).

    Its HTTP-01, HTTPS and TLS-ALPN-01 servers are off ("" disables each). The caller stops
    the process (tests.support.process_stop).
    """
    dns_port, management_port = ports_free(2)
    log = (workdir / LOG_NAME).open("ab")
    with log:
        process = subprocess.Popen(
            [
                program,
                "-defaultIPv4",
                default_ipv4,
                "-defaultIPv6",
                default_ipv6,
                "-dns01",
                f"127.0.0.1:{dns_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                f"127.0.0.1:{management_port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        # The DNS server listens on UDP and TCP alike; its TCP side stands for both.
        if port_open(dns_port) and port_open(management_port):
            return process, ChallTestSrv(dns_port=dns_port, management_port=management_port)
        time.sleep(0.05)
    process_stop(process)
    raise RuntimeError(
        f"pebble-challtestsrv did not listen within {START_TIMEOUT:g} s:\n"
        f"{log_tail(workdir / LOG_NAME)}"
    )


@contextmanager
def challtestsrv_run(
    workdir: Path, *, default_ipv4: str = "", default_ipv6: str = ""
) -> Iterator[ChallTestSrv]:
    """pebble-challtestsrv alone, as a DNS server; by default names without records have no
    address. Stopped on exit."""
    program = require_program("pebble-challtestsrv")
    workdir.mkdir(parents=True, exist_ok=True)
    started = None
    for _attempt in range(START_ATTEMPTS):
        started = challtestsrv_start(
            program, workdir=workdir, default_ipv4=default_ipv4, default_ipv6=default_ipv6
        )
        if started is not None:
            break
    else:
        raise RuntimeError(f"pebble-challtestsrv did not start:\n{log_tail(workdir / LOG_NAME)}")
    process, server = started
    try:
        yield server
    finally:
        process_stop(process)
