"""How the certificates window and the alert banner scale with the number of certificates.

Seeds two databases, one with 100 certificates and one with 100 000, then requests the
certificates window (first page) and a small page that carries the banner, alternating between
the two databases so that both are measured side by side under the same machine load. Prints
the median time and the query count per page and size, and the ratio large/small.
Target (issue 2): ratio <= 1.5 and equal query counts.

    make bench            # SQLite in a temporary folder
    DATABASE_URL=postgres://... .venv/bin/python bench/scale.py   # PostgreSQL (creates 2 DBs)
"""

import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

SIZES = (100, 100_000)
ROUNDS = 25
WARMUP = 3
INSTITUTIONS = 10

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="certmgr-bench-")
os.environ.setdefault("CERTMGR_VAR_DIR", _tmp)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certmgr.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from certificates.models import Certificate  # noqa: E402
from institutions.models import Institution, Membership  # noqa: E402

PAGES = {
    "certificates window": "/certificates/",
    "page with banner": "/certificates/new/",
}


def database_use(size: int) -> None:
    """Point the default connection at the database holding `size` certificates."""
    connection.close()
    base = settings.DATABASES["default"]
    if base["ENGINE"].endswith("sqlite3"):
        name = str(Path(_tmp) / f"bench-{size}.sqlite3")
    else:
        name = f"certmgr_bench_{size}"
    connections["default"].settings_dict["NAME"] = name


def postgres_create(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')


def seed(size: int) -> None:
    """Certificates spread over institutions with expiries from 10 days ago to a year ahead."""
    now = timezone.now()
    institutions = Institution.objects.bulk_create(
        Institution(name=f"Institution {index}", slug=f"institution-{index}")
        for index in range(INSTITUTIONS)
    )
    User = get_user_model()
    User.objects.create_user("staff", password="x", is_staff=True)
    manager = User.objects.create_user("manager", password="x")
    Membership.objects.create(user=manager, institution=institutions[0], role="manager")
    batch = []
    for index in range(size):
        days = -10 + (index * 7919) % 375  # a deterministic spread over [-10, 365)
        expires_at = now + timedelta(days=days, minutes=index % 1440)
        batch.append(
            Certificate(
                institution=institutions[index % INSTITUTIONS],
                name=f"certificate {index}",
                domains=[f"shop{index}.example.test", f"www.shop{index}.example.test"],
                common_name=f"shop{index}.example.test",
                fingerprint_sha256=f"{index:064X}",
                key_type="EC",
                key_curve="P-256",
                not_before=expires_at - timedelta(days=90),
                not_after=expires_at,
                expires_at=expires_at,
            )
        )
        if len(batch) == 5000:
            Certificate.objects.bulk_create(batch)
            batch = []
    Certificate.objects.bulk_create(batch)


def prepare(size: int) -> None:
    if not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        connection.close()
        connections["default"].settings_dict["NAME"] = "postgres"
        postgres_create(f"certmgr_bench_{size}")
    database_use(size)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    seed(size)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics, as a long-running database has
    print(f"seeded {size:>7} certificates in {time.perf_counter() - started:.1f} s")


def measure(client: Client, url: str) -> tuple[float, int]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, len(queries)


def main() -> None:
    setup_test_environment()
    for size in SIZES:
        prepare(size)
    print(f"database: {connection.vendor}; {ROUNDS} rounds, sizes measured alternately\n")
    for username in ("staff", "manager"):
        clients = {}
        for size in SIZES:
            database_use(size)
            client = Client(HTTP_HOST="localhost")  # a back-office host
            client.force_login(get_user_model().objects.get(username=username))
            clients[size] = client
        for page, url in PAGES.items():
            times = {size: [] for size in SIZES}
            queries = {}
            for round_number in range(WARMUP + ROUNDS):
                for size in SIZES:
                    database_use(size)
                    elapsed, count = measure(clients[size], url)
                    queries[size] = count
                    if round_number >= WARMUP:
                        times[size].append(elapsed)
            small, large = (statistics.median(times[size]) for size in SIZES)
            same = queries[SIZES[0]] == queries[SIZES[1]]
            print(
                f"{page:<20} as {username:<8}"
                f" {SIZES[0]:>6}: {small * 1000:6.1f} ms {queries[SIZES[0]]:>2} queries |"
                f" {SIZES[1]:>6}: {large * 1000:6.1f} ms {queries[SIZES[1]]:>2} queries |"
                f" ratio {large / small:4.2f}"
                f" {'(queries equal)' if same else '(QUERIES DIFFER)'}"
            )


if __name__ == "__main__":
    main()
