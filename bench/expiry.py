"""How check_expiry scales with the number of certificates, next to a raw COUNT on the table.

Seeds 10 000 and 1 000 000 certificates (expiries spread from 10 days ago to a year ahead, one
in ten short-lived, one in twenty a renewal of the one before) over 10 institutions, then
times, per size:

- `raw count`: one `SELECT COUNT(*) FROM certificates_certificate WHERE expires_at < now + 30 days`,
  the range check_expiry's thresholds reach (median of several);
- `first run`: check_expiry on the freshly loaded table, where every certificate inside the
  thresholds is a new finding (reported, not the target);
- `hourly run`: check_expiry one hour later, and the hours after (median): what beat does all
  day, recording and mailing the certificates that crossed a threshold in that hour;
- `rerun`: check_expiry again at the same instant: nothing new to find or send.

Each run is timed in its two parts: finding and recording (what the hourly check_expiry task
does itself) and sending the digests (the send_digest tasks it queues, one per institution),
and whole, as `manage.py check_expiry` runs it inline. Each is printed with its ratio to a raw
count timed just before it (the machines are shared: absolute times drift). Target (issue
"Expiry monitoring"): the hourly check_expiry <= 5x the raw count at 1 000 000 certificates.
E-mail goes to Django's in-memory backend, so sending includes rendering the digests, not an
SMTP server.

    .venv/bin/python bench/expiry.py                          # SQLite in a temporary folder
    scripts/with-postgres .venv/bin/python bench/expiry.py    # PostgreSQL (one DB per size)
    BENCH_SIZES=10000 .venv/bin/python bench/expiry.py        # a quick run
"""

import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

SIZES = tuple(int(size) for size in os.environ.get("BENCH_SIZES", "10000,1000000").split(","))
INSTITUTIONS = 10
HOURLY_RUNS = 5
REPEATS = 7
BATCH = 10_000

ROOT = Path(__file__).resolve().parent.parent
# Not bench/ itself: a script there named like a package (acme) would shadow it.
sys.path[:] = [path for path in sys.path if Path(path or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="certmgr-bench-expiry-")
os.environ.setdefault("CERTMGR_VAR_DIR", _tmp)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certmgr.settings")
os.environ.setdefault("LOG_LEVEL", "ERROR")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core import mail  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from certificates.models import Certificate, ExpiryThreshold  # noqa: E402
from certificates.threshold_store import certificate_thresholds  # noqa: E402
from certificates.thresholds import thresholds_due  # noqa: E402
from institutions.models import Institution  # noqa: E402
from monitoring.delivery import findings_deliver  # noqa: E402
from monitoring.findings import findings_collect  # noqa: E402
from monitoring.models import Notification  # noqa: E402
from saleschannels.models import SalesChannel  # noqa: E402


def database_use(size: int) -> None:
    connection.close()
    if connection.vendor == "sqlite":
        name = str(Path(_tmp) / f"bench-expiry-{size}.sqlite3")
    else:
        name = f"certmgr_bench_expiry_{size}"
    connections["default"].settings_dict["NAME"] = name


def postgres_create(name: str) -> None:
    connection.close()
    connections["default"].settings_dict["NAME"] = "postgres"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')


def certificate_rows(size: int, now, institution_ids: list[int]):
    """Rows for certificates_certificate, each with the rows of its thresholds
    (certificates_expirythreshold), as certificate_upload would store them."""
    fields = [field for field in Certificate._meta.concrete_fields]
    columns = [field.column for field in fields]
    constant = {
        field.attname: field.get_db_prep_save(field.get_default(), connection)
        for field in fields
        if not field.primary_key
    }
    constant.update(
        key_type="EC",
        key_curve="P-256",
        signature_hash="sha256",
        issuer="CN=Bench CA",
        expiry_source="parsed",
        kind="ssl",
        source="uploaded",
        created_at=connection.ops.adapt_datetimefield_value(now),
        created_by_id=None,
    )
    adapt = connection.ops.adapt_datetimefield_value
    probe = Certificate(source="uploaded")
    for index in range(size):
        days = -10 + (index * 7919) % 375  # a deterministic spread over [-10, 365)
        expires_at = now + timedelta(days=days, minutes=index % 1440)
        lifetime = timedelta(days=45 if index % 10 == 0 else 398)
        not_before = expires_at - lifetime
        renewal = index % 20 == 19  # renews the certificate just before it
        probe.not_before, probe.expires_at = not_before, expires_at
        replaced = index % 20 == 18
        thresholds = [] if replaced else thresholds_due(certificate_thresholds(probe), now)
        row = dict(constant)
        row.update(
            id=index + 1,
            institution_id=institution_ids[index % INSTITUTIONS],
            name=f"certificate {index}",
            common_name=f"shop{index}.example.test",
            domains=json.dumps([f"shop{index}.example.test", f"www.shop{index}.example.test"]),
            fingerprint_sha256=f"{index:064X}",
            serial_number=f"{index:X}",
            not_before=adapt(not_before),
            not_after=adapt(expires_at),
            expires_at=adapt(expires_at),
            replaces_id=index if renewal else None,
        )
        yield (
            columns,
            [row[field.attname] for field in fields],
            [(index + 1, threshold.name, adapt(threshold.crossed_at)) for threshold in thresholds],
        )


def seed(size: int, now) -> None:
    institutions = Institution.objects.bulk_create(
        Institution(
            name=f"Institution {index}",
            slug=f"institution-{index}",
            notification_emails=f"ops@institution-{index}.test",
        )
        for index in range(INSTITUTIONS)
    )
    ids = [institution.pk for institution in institutions]
    rows = certificate_rows(size, now, ids)
    columns, first, first_thresholds = next(rows)
    table = Certificate._meta.db_table
    threshold_table = ExpiryThreshold._meta.db_table
    threshold_columns = ["certificate_id", "name", "crossed_at"]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            thresholds = list(first_thresholds)
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write_row(first)
                for _, values, more in rows:
                    copy.write_row(values)
                    thresholds.extend(more)
            with raw.copy(
                f"COPY {threshold_table} ({', '.join(threshold_columns)}) FROM STDIN"
            ) as copy:
                for values in thresholds:
                    copy.write_row(values)
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            cursor.execute(f"SELECT setval({sequence}, (SELECT MAX(id) FROM {table}))")
        else:
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join(['%s'] * len(columns))})"
            )
            threshold_sql = (
                f"INSERT INTO {threshold_table} ({', '.join(threshold_columns)}) "
                "VALUES (%s, %s, %s)"
            )
            batch, thresholds = [first], list(first_thresholds)
            for _, values, more in rows:
                batch.append(values)
                thresholds.extend(more)
                if len(batch) == BATCH:
                    cursor.executemany(sql, batch)
                    cursor.executemany(threshold_sql, thresholds)
                    batch, thresholds = [], []
            if batch:
                cursor.executemany(sql, batch)
                cursor.executemany(threshold_sql, thresholds)
    # A few channels, some failing: the channel queries run too.
    SalesChannel.objects.bulk_create(
        SalesChannel(
            institution_id=ids[index % INSTITUTIONS],
            name=f"shop {index}",
            hostname=f"shop{index}.example.test",
            ssl_mode="managed",
            active_certificate_id=index + 1,
            renewal_failures=3 if index % 25 == 0 else 0,
            probe_status="mismatch" if index % 40 == 0 else "ok",
            probe_fingerprint=f"{index:064X}",
        )
        for index in range(min(size, 1000))
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def prepare(size: int, now) -> None:
    if connection.vendor == "postgresql":
        postgres_create(f"certmgr_bench_expiry_{size}")
    database_use(size)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    seed(size, now)
    print(f"seeded {size:>9,} certificates in {time.perf_counter() - started:5.1f} s", flush=True)


def raw_count_seconds(now, repeats: int = REPEATS) -> float:
    horizon = now + timedelta(days=max(settings.CERTMGR_NOTIFY_DAYS))
    sql = f"SELECT COUNT(*) FROM {Certificate._meta.db_table} WHERE expires_at < %s"
    param = connection.ops.adapt_datetimefield_value(horizon)
    times = []
    with connection.cursor() as cursor:
        for _ in range(repeats + 1):
            started = time.perf_counter()
            cursor.execute(sql, [param])
            cursor.fetchone()
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


@dataclass
class Run:
    find_record: float  # what the check_expiry task does itself
    send: float  # the digests (the send_digest tasks it queues, run inline here)
    recorded: int
    mails: int
    count: float  # the raw count, timed right before

    @property
    def total(self) -> float:
        return self.find_record + self.send


def run(now) -> Run:
    """One check_expiry at `now`, inline as `manage.py check_expiry` does it, timed in its
    two parts, next to a raw count timed just before (the machine's load changes)."""
    count = raw_count_seconds(now, repeats=3)
    mail.outbox = []
    started = time.perf_counter()
    recorded = findings_collect(now=now)
    collected = time.perf_counter()
    findings_deliver(now=now)
    sent = time.perf_counter()
    return Run(collected - started, sent - collected, recorded, len(mail.outbox), count)


def report(label: str, runs: list[Run], extra: str) -> None:
    """Medians over the runs, each ratio taken against its own raw count."""

    def median_ms(part) -> str:
        return f"{statistics.median(part(run) for run in runs) * 1000:8.1f} ms"

    def median_ratio(part) -> str:
        return f"{statistics.median(part(run) / run.count for run in runs):6.1f}x"

    print(f"  {label} {extra}")
    for name, part in (
        ("find + record (check_expiry task)", lambda run: run.find_record),
        ("send the digests (send_digest)", lambda run: run.send),
        ("whole run (manage.py check_expiry)", lambda run: run.total),
    ):
        print(f"    {name:<36} {median_ms(part)}  {median_ratio(part)} raw count")


def measure(size: int, now) -> None:
    database_use(size)
    count = raw_count_seconds(now)
    print(f"{size:,} certificates ({connection.vendor})")
    print(f"  raw count {count * 1000:.1f} ms (and again before each run below)")
    first = run(now)
    report("first run", [first], f"({first.recorded:,} findings, {first.mails} digests)")
    if connection.vendor == "postgresql":
        # What autovacuum does soon after a first run's tens of thousands of new findings:
        # without it the planner still believes the notifications table empty.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    hourly = [run(now + timedelta(hours=hour)) for hour in range(1, HOURLY_RUNS + 1)]
    findings = statistics.median(run.recorded for run in hourly)
    report("hourly run", hourly, f"(median of {HOURLY_RUNS}; ~{findings:.0f} findings, 10 digests)")
    last = now + timedelta(hours=HOURLY_RUNS)
    reruns = [run(last) for _ in range(REPEATS)]
    assert all(rerun.recorded == 0 and rerun.mails == 0 for rerun in reruns)
    report("rerun", reruns, f"(median of {REPEATS}; nothing new: sends nothing)")
    notifications = Notification.objects.count()
    print(f"  {notifications:,} notifications recorded in all", flush=True)


def main() -> None:
    # E-mail to the in-memory outbox (not setup_test_environment(), which would also slow
    # every template down to record its context for tests).
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    now = timezone.now()
    for size in SIZES:
        prepare(size, now)
        measure(size, now)


if __name__ == "__main__":
    main()
