"""The renewal seam at the edge: handshakes that fail while a certificate is swapped.

nginx opens a hostname's ``.crt`` and ``.key`` separately at every handshake (README, "Edge
and probe"), so a handshake whose two opens straddle a swap of both files pairs one
certificate with the other key and fails (``SSL_use_PrivateKey ... key values mismatch``).
A renewal that keeps its key (ACME_REUSE_KEY, acme_client/keys.py) changes only the ``.crt``
and should never fail one.

A real nginx (tests/nginx.py, the production lookup by SNI) serves one hostname; CLIENTS
threads handshake to it without pause while the channel's active certificate is switched
back and forth and deployed the way the product does it (``edge_channel_deploy``), SWAPS
times per mode, in alternating blocks so that both modes see the same machine load:

* key kept: two certificates for the same key (what a renewal with ACME_REUSE_KEY makes);
* new key: two certificates with keys of their own (ACME_REUSE_KEY=false, or a rotation).

Prints failed / total handshakes for both, side by side, the failure ratio, the "key values
mismatch" lines nginx logged meanwhile, and why the clients' failed handshakes failed.

    make bench
    .venv/bin/python bench/handshake_window.py [--swaps 600] [--clients 4]
"""

import argparse
import logging
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = Path(tempfile.mkdtemp(prefix="certmgr-bench-handshake-"))
os.environ.setdefault("CERTMGR_VAR_DIR", str(_tmp))
os.environ["DATABASE_URL"] = f"sqlite:///{_tmp / 'bench.sqlite3'}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certmgr.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from certificates.bundle import certificate_bundle_parse  # noqa: E402
from certificates.models import Certificate  # noqa: E402
from certificates.services import certificate_upload  # noqa: E402
from certmgr import demo_pki  # noqa: E402
from institutions.models import Institution  # noqa: E402
from saleschannels.edge import edge_channel_deploy  # noqa: E402
from saleschannels.models import SalesChannel  # noqa: E402
from tests.nginx import nginx_program, nginx_run  # noqa: E402

HOSTNAME = "shop.bench.test"
BLOCKS = 3
SETTLE_SECONDS = 0.3
# What nginx logs when a handshake paired a certificate with another key.
MISMATCH = "key values mismatch"


def certificate_make(institution, intermediate, key=None) -> Certificate:
    leaf = demo_pki.leaf_create(issuer=intermediate, hostnames=[HOSTNAME], key=key)
    bundle = certificate_bundle_parse(
        certificate=leaf.certificate_pem,
        private_key=leaf.key_pem,
        chain=intermediate.certificate_pem,
    )
    assert bundle.ok, bundle.errors
    return certificate_upload(
        institution=institution,
        name=HOSTNAME,
        kind=Certificate.Kind.SSL,
        bundle=bundle,
        actor=None,
        source=Certificate.Source.MANAGED,
    )


class Storm:
    """CLIENTS threads handshaking to the edge without pause, counting what fails."""

    def __init__(self, address: str, clients: int):
        host, _, port = address.rpartition(":")
        self.target = (host, int(port))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.counting = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.total = self.failed = 0
        self.reasons = Counter()  # why counted handshakes failed, as the client saw it
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _handshake(self) -> str | None:
        """None when the handshake succeeded, else why it failed."""
        try:
            with (
                socket.create_connection(self.target, timeout=5) as raw,
                self.context.wrap_socket(raw, server_hostname=HOSTNAME),
            ):
                return None
        except OSError as error:  # ssl.SSLError included
            return type(error).__name__ + ": " + str(getattr(error, "reason", None) or error)

    def _run(self) -> None:
        while not self.stop.is_set():
            failure = self._handshake()
            if self.counting.is_set():
                with self.lock:
                    self.total += 1
                    if failure is not None:
                        self.failed += 1
                        self.reasons[failure] += 1

    def take(self) -> tuple[int, int]:
        """(failed, total) since the last take."""
        with self.lock:
            counts = (self.failed, self.total)
            self.failed = self.total = 0
        return counts


def swaps_run(channel: SalesChannel, pair: tuple[Certificate, Certificate], swaps: int) -> None:
    for index in range(swaps):
        certificate = pair[index % 2]
        SalesChannel.objects.filter(pk=channel.pk).update(active_certificate=certificate)
        assert edge_channel_deploy(channel), "nothing was written"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swaps", type=int, default=600, help="swaps per mode")
    parser.add_argument("--clients", type=int, default=4, help="handshaking threads")
    arguments = parser.parse_args()
    if nginx_program() is None:
        sys.exit("nginx is not installed (apt-get install nginx-light)")
    logging.disable(logging.INFO)
    call_command("migrate", verbosity=0)
    settings.CERTMGR_EDGE_DIR = _tmp / "edge"

    institution = Institution.objects.create(name="Bench", slug="bench")
    root = demo_pki.ca_create(common_name="Bench Root")
    intermediate = demo_pki.ca_create(common_name="Bench Intermediate", issuer=root)
    key = demo_pki.private_key_generate("ec256")
    kept_first = certificate_make(institution, intermediate, key=key)
    pairs = {
        "key kept": (kept_first, certificate_make(institution, intermediate, key=key)),
        "new key": (certificate_make(institution, intermediate), kept_first),
    }
    channel = SalesChannel.objects.create(
        institution=institution,
        name="Bench shop",
        hostname=HOSTNAME,
        ssl_mode=SalesChannel.SslMode.MANAGED,
        active_certificate=kept_first,
    )
    edge_channel_deploy(channel)

    results = {mode: [0, 0, 0] for mode in pairs}
    with nginx_run(edge_dir=settings.CERTMGR_EDGE_DIR, workdir=_tmp / "nginx") as nginx:
        storm = Storm(nginx.address, arguments.clients)
        for thread in storm.threads:
            thread.start()
        try:
            per_block = max(1, arguments.swaps // BLOCKS)
            for _ in range(BLOCKS):
                for mode, pair in pairs.items():
                    # Start each block from the pair's first certificate, uncounted.
                    SalesChannel.objects.filter(pk=channel.pk).update(active_certificate=pair[0])
                    edge_channel_deploy(channel)
                    # Let the handshakes begun during that swap finish before counting.
                    time.sleep(SETTLE_SECONDS)
                    storm.take()
                    log_start = len(nginx.error_log())
                    storm.counting.set()
                    swaps_run(channel, (pair[1], pair[0]), per_block)
                    storm.counting.clear()
                    time.sleep(SETTLE_SECONDS)
                    failed, total = storm.take()
                    results[mode][0] += failed
                    results[mode][1] += total
                    results[mode][2] += nginx.error_log()[log_start:].count(MISMATCH)
        finally:
            storm.stop.set()
            for thread in storm.threads:
                thread.join()

    swaps = per_block * BLOCKS
    print(f"{arguments.clients} clients handshaking without pause, {swaps} swaps per mode")
    print(f"{'mode':<10} {'failed':>8} {'total':>8} {'failed/total':>13} {'nginx: mismatch':>16}")
    for mode, (failed, total, mismatches) in results.items():
        ratio = failed / total if total else 0.0
        print(f"{mode:<10} {failed:>8} {total:>8} {ratio:>13.4f} {mismatches:>16}")
    for reason, count in storm.reasons.most_common():
        print(f"  client saw {count} x {reason}")


if __name__ == "__main__":
    main()
