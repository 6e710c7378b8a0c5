"""Migration acme_client 0003: orders recorded before failures were typed lose their raw
error text (shown on the channel page) for one generic sentence; successful orders keep none."""

import pytest

from tests.migration_scenario import VENDORS, scenario_run
from tests.postgres import postgres_database

SCENARIO = r"""
import json

import django

django.setup()

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("acme_client", "0002_certificates_app")]
AFTER = [("acme_client", "0003_order_errors_in_words")]
executor = MigrationExecutor(connection)
executor.migrate(BEFORE)
Order = executor.loader.project_state(BEFORE).apps.get_model("acme_client", "AcmeOrder")
raw = "HTTPSConnectionPool(host='ca.internal', port=443): Max retries exceeded"
Order.objects.create(hostname="a.acme.test", directory_url="https://ca.test/d", status="failed",
                     error=raw)
Order.objects.create(hostname="b.acme.test", directory_url="https://ca.test/d", status="valid")
executor = MigrationExecutor(connection)
executor.migrate(AFTER)
Order = executor.loader.project_state(AFTER).apps.get_model("acme_client", "AcmeOrder")
print(json.dumps({row.hostname: row.error for row in Order.objects.all()}))
"""


@pytest.mark.parametrize("vendor", VENDORS)
def test_raw_order_errors_become_one_generic_sentence(tmp_path, vendor):
    if vendor == "sqlite":
        url = f"sqlite:///{tmp_path / 'orders.sqlite3'}"
        summary = scenario_run(tmp_path, url, SCENARIO, name="order_errors")
    else:
        with postgres_database(name_prefix="certmgr_orders") as url:
            summary = scenario_run(tmp_path, url, SCENARIO, name="order_errors")
    assert summary == {
        "a.acme.test": "The order failed (recorded before failures were typed; the details are "
        "in the platform's log).",
        "b.acme.test": "",
    }
