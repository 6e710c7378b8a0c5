"""Migration institutions 0003: every existing institution gets a webhook signing secret of
its own (a default computed once by AddField would give them all the same one), encrypted
under the configured key. The scenario runs in a subprocess on a database of its own
(tests/migration_scenario.py): SQLite in every pass, PostgreSQL when the suite runs on it."""

from __future__ import annotations

import pytest

from tests.migration_scenario import VENDORS, scenario_run_on

SCENARIO = r"""
import json

import django

django.setup()

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core import encryption

BEFORE = [("institutions", "0002_notifications")]
AFTER = [("institutions", "0003_webhook_signing_secret")]

executor = MigrationExecutor(connection)
executor.migrate(BEFORE)
old = executor.loader.project_state(BEFORE).apps
for n in range(3):
    old.get_model("institutions", "Institution").objects.create(name=f"I{n}", slug=f"i{n}")

executor = MigrationExecutor(connection)
executor.migrate(AFTER)
new = executor.loader.project_state(AFTER).apps
stored = list(
    new.get_model("institutions", "Institution").objects.values_list(
        "webhook_secret_encrypted", flat=True
    )
)
print(json.dumps({
    "vendor": connection.vendor,
    "secrets": [encryption.decrypt(token).decode() for token in stored],
    "plain_in_column": any(token.startswith("whsec_") for token in stored),
}))
"""


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_institution_gets_a_secret_of_its_own(tmp_path, vendor):
    summary = scenario_run_on(vendor, tmp_path, SCENARIO, name="signing_secrets_migration")

    assert summary["vendor"] == vendor
    assert len(summary["secrets"]) == 3
    assert len(set(summary["secrets"])) == 3
    assert all(secret.startswith("whsec_") for secret in summary["secrets"])
    assert summary["plain_in_column"] is False
