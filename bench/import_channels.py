"""Bulk onboarding (README, "Importing sales channels"): a CSV import of 1,000 sales
channels next to the same 1,000 created one by one the way the New sales channel form and the
SSL page create them.

Each round, alternating, on fresh hostnames:

* import: saleschannels.imports (parse and check, a constant number of queries) and
  acme_client.imports.channels_import (one transaction), for ROWS rows;
* one by one: ROWS times ChannelForm validation, services.channel_create and
  scheduling.channel_ssl_mode_choose, each channel its own transaction, as ROWS requests would.

Every row is `managed` (the slower path: the switch, its audit row, its status, the edge) unless
--mode none. Work queued on commit (probes, status events, logs) runs in both, to the
filesystem broker of `make run`. Prints the median time of each, the import's time against
the 5 s target, and the ratio import / one by one. Run by hand; not a test.

    .venv/bin/python bench/import_channels.py [--rows 1000] [--rounds 3] [--existing 0]
    DATABASE_URL=postgres://... .venv/bin/python bench/import_channels.py

--existing N first stores N other channels with certificates deployed (their hostnames in
the edge manifest), as on a platform already serving shops.
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="certmgr-bench-import-")
os.environ.setdefault("CERTMGR_VAR_DIR", _tmp)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certmgr.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

# ownership first: acme_client.scheduling imported first runs into an import cycle.
from acme_client import ownership, scheduling  # noqa: E402, F401
from acme_client.imports import channels_import, channels_import_plan  # noqa: E402
from institutions.models import Institution, Membership  # noqa: E402
from saleschannels import edge, services  # noqa: E402
from saleschannels.forms import ChannelForm  # noqa: E402
from saleschannels.imports import HEADER  # noqa: E402
from saleschannels.models import SalesChannel  # noqa: E402

DATABASE = "certmgr_bench_import"
TARGET_SECONDS = 5.0


def database_prepare() -> None:
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        connections["default"].settings_dict["NAME"] = str(Path(_tmp) / "bench-import.sqlite3")
    else:
        connection.close()
        connections["default"].settings_dict["NAME"] = "postgres"
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
            cursor.execute(f'CREATE DATABASE "{DATABASE}"')
        connection.close()
        connections["default"].settings_dict["NAME"] = DATABASE
    call_command("migrate", verbosity=0)


def existing_seed(institution: Institution, count: int) -> None:
    """`count` channels already on the platform, in the database and the edge manifest."""
    if not count:
        return
    SalesChannel.objects.bulk_create(
        SalesChannel(institution=institution, name=f"Old {n}", hostname=f"old{n}.bench.test")
        for n in range(count)
    )
    directory = Path(settings.CERTMGR_EDGE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {f"old{n}.bench.test": f"{n:064X}" for n in range(count)}
    edge._manifest_write(directory, manifest)


def rows(round_tag: str, count: int, mode: str) -> list[tuple[str, str, str]]:
    return [(f"Shop {n}", f"shop{n}.{round_tag}.bench.test", mode) for n in range(count)]


def csv_bytes(slug: str, items) -> bytes:
    lines = [HEADER, *(f"{slug},{name},{hostname},{mode}" for name, hostname, mode in items)]
    return "\r\n".join(lines).encode()


class QueryCounter:
    """Every query run (CaptureQueriesContext keeps only the last 9,000)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


@dataclass
class Timing:
    wall: float
    cpu: float  # this process's CPU time: what a busy shared machine changes least


def timed(action) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def run_import(user, institution, items) -> tuple[Timing, int, int]:
    """The time, the queries of the check, the queries of the import (commit hooks included)."""
    data = csv_bytes(institution.slug, items)
    checked, imported = QueryCounter(), QueryCounter()

    def work() -> None:
        with connection.execute_wrapper(checked):
            plan = channels_import_plan(data, institutions=Institution.objects.managed_by(user))
        assert plan.ok, [str(error) for error in plan.errors[:5]]
        with connection.execute_wrapper(imported):
            result = channels_import(plan, actor=user)
        assert len(result.created) == len(items)

    return timed(work), checked.count, imported.count


def run_one_by_one(user, institution, items) -> Timing:
    def work() -> None:
        for name, hostname, mode in items:
            form = ChannelForm(
                {"institution": institution.pk, "name": name, "hostname": hostname}, user=user
            )
            assert form.is_valid(), form.errors
            channel = services.channel_create(
                institution=form.cleaned_data["institution"],
                name=form.cleaned_data["name"],
                hostname=form.cleaned_data["hostname"],
                actor=user,
            )
            if mode == SalesChannel.SslMode.MANAGED:
                scheduling.channel_ssl_mode_choose(channel=channel, mode=mode, actor=user)

    return timed(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--existing", type=int, default=0)
    parser.add_argument("--mode", choices=["managed", "none"], default="managed")
    options = parser.parse_args()
    logging.disable(logging.INFO)  # 1,000s of event lines; the work of making them stays
    settings.DEBUG = False
    database_prepare()
    institution = Institution.objects.create(name="Bench Tickets", slug="bench-tickets")
    user = get_user_model().objects.create_user(username="bench-manager")
    Membership.objects.create(user=user, institution=institution, role="manager")
    existing_seed(institution, options.existing)

    imports, singles, check_queries, import_queries = [], [], 0, 0
    for number in range(options.rounds):
        timing, check_queries, import_queries = run_import(
            user, institution, rows(f"import{number}", options.rows, options.mode)
        )
        imports.append(timing)
        singles.append(
            run_one_by_one(user, institution, rows(f"single{number}", options.rows, options.mode))
        )
        print(
            f"round {number + 1}: import {imports[-1].wall:.2f} s ({imports[-1].cpu:.2f} s CPU), "
            f"one by one {singles[-1].wall:.2f} s ({singles[-1].cpu:.2f} s CPU)"
        )

    def median(timings, part):
        return statistics.median(getattr(timing, part) for timing in timings)

    imported, single = median(imports, "wall"), median(singles, "wall")
    imported_cpu, single_cpu = median(imports, "cpu"), median(singles, "cpu")
    print(
        f"\n{options.rows:,} rows ({options.mode}), {options.existing:,} channels already, "
        f"{connection.vendor}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"median of {options.rounds}:"
    )
    print(
        f"  import (parse, check, create)  {imported:.2f} s, {imported_cpu:.2f} s CPU: "
        f"{imported / TARGET_SECONDS:.0%} of the {TARGET_SECONDS:.0f} s target "
        f"({'met' if imported < TARGET_SECONDS else 'MISSED'})"
    )
    print(
        f"    queries: check {check_queries}, import {import_queries} "
        f"({import_queries / options.rows:.1f} per row)"
    )
    print(f"  one by one (form + services)   {single:.2f} s, {single_cpu:.2f} s CPU")
    print(
        f"  ratio import / one by one      {imported / single:.2f} "
        f"({imported_cpu / single_cpu:.2f} in CPU time)"
    )


if __name__ == "__main__":
    main()
