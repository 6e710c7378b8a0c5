"""Migration saleschannels 0006: the probe's free-text errors become typed reasons.

Rows recorded before it carry free text (remote details included); after it, a recorded
error is the generic reason, except the two Apple Pay texts that named a missing proof, and
no text survives. Backwards, each reason's plain words become the text again.

Like tests/certmgr/test_migrations_carry_data.py, the scenario runs in a subprocess on a
database of its own (migrating pytest-django's test database back and forth would rebuild
its tables under other tests): SQLite in every pass, PostgreSQL when the suite runs on it.
"""

from __future__ import annotations

import importlib

import pytest

from saleschannels.models import ProbeFailure
from tests.migration_scenario import VENDORS, scenario_run
from tests.postgres import postgres_database

SCENARIO = r"""
import json

import django

django.setup()

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("saleschannels", "0005_certificates_app")]
AFTER = [("saleschannels", "0006_probe_failure_reasons")]
ROWS = {
    # hostname: (probe_error, apple_probe_error)
    "fine.acme.test": ("", ""),
    "leaky.acme.test": (
        "TLS handshake for leaky.acme.test at 127.0.0.1:443 failed (WRONG_VERSION_NUMBER).",
        "https://leaky.acme.test/.well-known/apple-developer-merchantid-domain-association "
        "answered 302 (redirect to https://metadata.internal/secret): Apple does not follow "
        "redirects.",
    ),
    "expired.acme.test": (
        "",
        "No valid identity proof to serve: the one chosen for this channel has expired.",
    ),
    "none.acme.test": (
        "",
        "No valid identity proof to serve: upload the institution's domain-association file.",
    ),
}

executor = MigrationExecutor(connection)
executor.migrate(BEFORE)
old = executor.loader.project_state(BEFORE).apps
institution = old.get_model("institutions", "Institution").objects.create(
    name="Acme Tickets", slug="acme-tickets"
)
Channel = old.get_model("saleschannels", "SalesChannel")
for hostname, (probe_error, apple_probe_error) in ROWS.items():
    Channel.objects.create(
        institution=institution,
        name=hostname,
        hostname=hostname,
        probe_error=probe_error,
        apple_probe_error=apple_probe_error,
    )

executor = MigrationExecutor(connection)
executor.migrate(AFTER)
new = executor.loader.project_state(AFTER).apps
forward = {
    row["hostname"]: [row["probe_failure"], row["apple_probe_failure"]]
    for row in new.get_model("saleschannels", "SalesChannel").objects.values()
}
columns = [
    column.name
    for column in connection.introspection.get_table_description(
        connection.cursor(), "saleschannels_saleschannel"
    )
]

executor = MigrationExecutor(connection)
executor.migrate(BEFORE)
back = {
    row["hostname"]: [row["probe_error"], row["apple_probe_error"]]
    for row in executor.loader.project_state(BEFORE)
    .apps.get_model("saleschannels", "SalesChannel")
    .objects.values()
}
print(json.dumps({"vendor": connection.vendor, "forward": forward, "columns": columns,
                  "back": back}))
"""


@pytest.mark.parametrize("vendor", VENDORS)
def test_free_text_probe_errors_become_typed_reasons_and_back(tmp_path, vendor):
    if vendor == "sqlite":
        summary = scenario_run(
            tmp_path,
            f"sqlite:///{tmp_path / 'probe.sqlite3'}",
            SCENARIO,
            name="probe_failure_migration",
        )
    else:
        with postgres_database(name_prefix="certmgr_probe") as database_url:
            summary = scenario_run(tmp_path, database_url, SCENARIO, name="probe_failure_migration")

    assert summary["vendor"] == vendor
    assert summary["forward"] == {
        "fine.acme.test": ["", ""],
        "leaky.acme.test": ["other", "other"],
        "expired.acme.test": ["", "proof_expired"],
        "none.acme.test": ["", "no_proof"],
    }
    # The free text is gone with its columns: no remote detail is kept anywhere.
    assert "probe_error" not in summary["columns"]
    assert "apple_probe_error" not in summary["columns"]
    generic = "The check failed (the details are in the platform's log)."
    assert summary["back"] == {
        "fine.acme.test": ["", ""],
        "leaky.acme.test": [generic, generic],
        "expired.acme.test": [
            "",
            "No valid identity proof to serve: the one chosen for this channel has expired.",
        ],
        "none.acme.test": [
            "",
            "No valid identity proof to serve: upload the institution's domain-association file.",
        ],
    }


def test_the_migration_words_every_reason_as_the_model_does():
    """Its reverse writes these words back; its choices are the model's as of then (0007
    added the reason for a hostname not verified yet)."""
    migration = importlib.import_module("saleschannels.migrations.0006_probe_failure_reasons")
    added_since = {ProbeFailure.UNVERIFIED}
    assert [c for c in ProbeFailure.choices if c[0] not in added_since] == migration.CHOICES
