"""How edge_sync() scales: a full deployment of 10 000 channels against a one-change resync.

Seeds one database with 10 000 sales channels, each with a certificate of its own, then
measures side by side in one run, alternating: a full ``edge_sync()`` into an empty directory
(a fresh one each round), and a resync of an already deployed directory where exactly one
channel's active certificate changed since the last sync. Prints the median of each, and the
ratio one-change / full. Target (issue 5): ratio <= 2 %.

Shortcut: generating 10 000 real certificates would take longer than the measurement, so
only REAL_PAIRS real leaf + key pairs are made (demo_pki) and each Certificate row reuses the
PEM and the encrypted key of one of them, with a fingerprint_sha256 of its own (made up, but
distinct per row). edge_sync compares fingerprints (manifest vs database), writes one file
pair per channel and decrypts every key it writes, so the work is what 10 000 distinct
certificates would cost; only the bytes on disk repeat.

    make bench            # SQLite in a temporary folder
    DATABASE_URL=postgres://... .venv/bin/python bench/edge.py
"""

import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

CHANNELS = 10_000
REAL_PAIRS = 50
ROUNDS = 5

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="certmgr-bench-edge-")
os.environ.setdefault("CERTMGR_VAR_DIR", _tmp)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certmgr.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from certificates.models import Certificate  # noqa: E402
from certmgr import demo_pki  # noqa: E402
from core import encryption  # noqa: E402
from institutions.models import Institution  # noqa: E402
from saleschannels.edge import EdgeChange, edge_sync  # noqa: E402
from saleschannels.models import SalesChannel  # noqa: E402

DATABASE = "certmgr_bench_edge"


def database_prepare() -> None:
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        connections["default"].settings_dict["NAME"] = str(Path(_tmp) / "bench-edge.sqlite3")
    else:
        connection.close()
        connections["default"].settings_dict["NAME"] = "postgres"
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
            cursor.execute(f'CREATE DATABASE "{DATABASE}"')
        connection.close()
        connections["default"].settings_dict["NAME"] = DATABASE
    call_command("migrate", verbosity=0)


def fingerprint_fake(index: int) -> str:
    """A distinct fingerprint per row, in the stored format "AB:CD:..." (32 bytes)."""
    return index.to_bytes(32, "big").hex(":").upper()


def seed() -> list[int]:
    """CHANNELS channels each with its own certificate, plus spare certificates to switch to;
    returns the ids of the spares."""
    now = timezone.now()
    institution = Institution.objects.create(name="Bench", slug="bench")
    issuer = demo_pki.ca_create(common_name="Bench CA")
    pairs = []
    for index in range(REAL_PAIRS):
        leaf = demo_pki.leaf_create(issuer=issuer, hostnames=[f"pair{index}.bench.test"])
        pairs.append(
            (
                leaf.certificate_pem.decode(),
                encryption.encrypt(leaf.key_pem),
                leaf.certificate.not_valid_after_utc,
            )
        )
    chain = issuer.certificate_pem.decode()
    spares = 2 * ROUNDS + 2
    certificates = []
    for index in range(CHANNELS + spares):
        pem, key_token, not_after = pairs[index % REAL_PAIRS]
        certificates.append(
            Certificate(
                institution=institution,
                name=f"certificate {index}",
                certificate_pem=pem,
                chain_pem=chain,
                private_key_encrypted=key_token,
                domains=[f"shop{index}.bench.test"],
                fingerprint_sha256=fingerprint_fake(index),
                not_before=now - timedelta(days=1),
                not_after=not_after,
                expires_at=not_after,
            )
        )
    certificates = Certificate.objects.bulk_create(certificates, batch_size=500)
    SalesChannel.objects.bulk_create(
        (
            SalesChannel(
                institution=institution,
                name=f"shop {index}",
                hostname=f"shop{index}.bench.test",
                ssl_mode=SalesChannel.SslMode.UPLOADED,
                certificate=certificates[index],
                active_certificate=certificates[index],
            )
            for index in range(CHANNELS)
        ),
        batch_size=500,
    )
    return [certificate.pk for certificate in certificates[CHANNELS:]]


def timed_sync(directory: Path) -> tuple[float, list[EdgeChange], int]:
    settings.CERTMGR_EDGE_DIR = directory
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        changes = edge_sync()
        elapsed = time.perf_counter() - started
    return elapsed, changes, len(queries)


def main() -> None:
    # One log line per change is right in production; 10 000 of them would time the console.
    logging.getLogger("saleschannels.edge").setLevel(logging.WARNING)
    database_prepare()
    started = time.perf_counter()
    spares = seed()
    print(f"seeded {CHANNELS} channels in {time.perf_counter() - started:.1f} s")
    steady = Path(_tmp) / "edge-steady"
    _, changes, _ = timed_sync(steady)
    assert len(changes) == CHANNELS, len(changes)
    switched = SalesChannel.objects.get(hostname="shop0.bench.test")

    full_times, one_times = [], []
    full_queries = one_queries = 0
    for round_number in range(ROUNDS):
        directory = Path(_tmp) / f"edge-full-{round_number}"
        elapsed, changes, full_queries = timed_sync(directory)
        assert len(changes) == CHANNELS, len(changes)
        full_times.append(elapsed)
        shutil.rmtree(directory)

        switched.active_certificate_id = spares[round_number]
        switched.save(update_fields=["active_certificate"])
        elapsed, changes, one_queries = timed_sync(steady)
        assert changes == [EdgeChange(switched.hostname, "written")], changes
        one_times.append(elapsed)

    full, one = statistics.median(full_times), statistics.median(one_times)
    print(f"database: {connection.vendor}; {ROUNDS} rounds, alternating; medians:")
    print(f"full sync into an empty directory: {full * 1000:8.1f} ms ({full_queries} queries)")
    print(f"resync with one change:            {one * 1000:8.1f} ms ({one_queries} queries)")
    print(f"ratio one-change / full: {one / full:.2%} (target <= 2 %)")
    shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
