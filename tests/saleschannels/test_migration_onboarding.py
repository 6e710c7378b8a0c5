"""Migration saleschannels 0007: proof of ownership and one status per channel.

Nothing that works today may stop on upgrade: a channel that holds a managed certificate or
serves an Apple Pay file counts as verified, and the audit trail says why; every channel gets
a token of its own and the status its state implies.
"""

from __future__ import annotations

import pytest

from tests.migration_scenario import VENDORS, scenario_run
from tests.postgres import postgres_database

SCENARIO = r"""
import json
from datetime import timedelta

import django

django.setup()

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("saleschannels", "0006_probe_failure_reasons"), ("core", "0001_initial")]
AFTER = [("saleschannels", "0007_onboarding_status")]
now = timezone.now()

executor = MigrationExecutor(connection)
executor.migrate(BEFORE)
old = executor.loader.project_state(BEFORE).apps
institution = old.get_model("institutions", "Institution").objects.create(
    name="Acme Tickets", slug="acme-tickets"
)
Certificate = old.get_model("certificates", "Certificate")


def certificate(name, *, source="uploaded", days=60):
    return Certificate.objects.create(
        institution=institution, name=name, source=source, domains=[name],
        expires_at=now + timedelta(days=days),
    )


Channel = old.get_model("saleschannels", "SalesChannel")
rows = {
    "managed.acme.test": dict(
        ssl_mode="managed",
        active_certificate=certificate("managed.acme.test", source="managed"),
        renewal_due_at=now + timedelta(days=30),
    ),
    "due.acme.test": dict(
        ssl_mode="managed",
        active_certificate=certificate("due.acme.test", source="managed", days=5),
        renewal_due_at=now - timedelta(hours=1),
    ),
    "pending.acme.test": dict(ssl_mode="managed"),
    "uploaded.acme.test": dict(
        ssl_mode="uploaded", active_certificate=certificate("uploaded.acme.test")
    ),
    "expired.acme.test": dict(
        ssl_mode="uploaded", active_certificate=certificate("expired.acme.test", days=-2)
    ),
    "applepay.acme.test": dict(ssl_mode="none", apple_pay_enabled=True),
    "plain.acme.test": dict(ssl_mode="none"),
}
for hostname, fields in rows.items():
    Channel.objects.create(institution=institution, name=hostname, hostname=hostname, **fields)

executor = MigrationExecutor(connection)
executor.migrate(AFTER)
new = executor.loader.project_state(AFTER).apps
channels = {
    row["hostname"]: row
    for row in new.get_model("saleschannels", "SalesChannel").objects.values(
        "hostname", "verification_token", "hostname_verified_at", "hostname_verified_by", "status"
    )
}
events = list(
    new.get_model("core", "AuditEvent").objects.order_by("target_repr").values(
        "action", "target_repr", "actor_id", "details"
    )
)
print(json.dumps({
    "vendor": connection.vendor,
    "status": {host: row["status"] for host, row in channels.items()},
    "verified_by": {host: row["hostname_verified_by"] for host, row in channels.items()},
    "verified_at_set": sorted(h for h, row in channels.items() if row["hostname_verified_at"]),
    "tokens": [row["verification_token"] for row in channels.values()],
    "events": events,
}))
"""


@pytest.mark.parametrize("vendor", VENDORS)
def test_channels_in_use_count_as_verified_and_each_gets_its_status(tmp_path, vendor):
    if vendor == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'onboarding.sqlite3'}"
        summary = scenario_run(tmp_path, database_url, SCENARIO, name="onboarding")
    else:
        with postgres_database(name_prefix="certmgr_onboarding") as database_url:
            summary = scenario_run(tmp_path, database_url, SCENARIO, name="onboarding")

    assert summary["vendor"] == vendor
    assert summary["status"] == {
        "managed.acme.test": "active",
        "due.acme.test": "renewal_due",
        "pending.acme.test": "unverified",
        "uploaded.acme.test": "uploaded",
        "expired.acme.test": "expired",
        "applepay.acme.test": "none",
        "plain.acme.test": "none",
    }
    verified = ["applepay.acme.test", "due.acme.test", "managed.acme.test"]
    assert summary["verified_at_set"] == verified
    assert {h for h, by in summary["verified_by"].items() if by} == set(verified)
    assert set(summary["verified_by"][h] for h in verified) == {"upgrade"}
    # Each channel its own token, of the form new channels get.
    tokens = summary["tokens"]
    assert len(set(tokens)) == len(tokens) == 7
    assert all(token.startswith("certmgr-") and len(token) > 30 for token in tokens)
    # The audit trail says why, once per channel verified, by no one.
    assert [event["target_repr"] for event in summary["events"]] == [
        f"{host} ({host})" for host in verified
    ]
    for event in summary["events"]:
        assert event["action"] == "channel.hostname_verified"
        assert event["actor_id"] is None
        assert event["details"]["method"] == "upgrade"
        assert "before proof of ownership was required" in event["details"]["reason"]
