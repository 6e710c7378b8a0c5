"""Moving certmgr's models to core, certificates and monitoring carries every row and key.

The migrations that move AuditEvent, Certificate, CertificateRequest, ExpiryThreshold,
Notification and ExpiryCheck out of the certmgr app rename tables under rows that foreign keys
(sales channels, ACME orders, notifications, thresholds, admin history) point at. This test
builds a database at the schema from before the move, fills it through the *historical* models
(an institution and its member; four certificates, three with encrypted keys, one replacing
another, one an Apple identity proof; a CSR with its key; two sales channels; notifications,
thresholds, an audit event, an ACME account and order; content types, a permission and an admin
log entry), migrates to the head and checks
with the current models that every row is there with its ids and values, every foreign key
resolves and is still enforced by the database (now against the renamed tables), every key
decrypts, the content types moved with their ids, and new rows continue the id sequences.

It runs in a subprocess on a database of its own: migrating pytest-django's test database
back and forth would rebuild its tables under the live servers and workers other tests leave
on it, and a fresh process starts from a clean migration loader and app registry. The SQLite
case runs in every pass; the PostgreSQL case exists only when the suite itself runs on
PostgreSQL (`make test-postgres`), on a new database of that same server (tests/postgres.py).
"""

from __future__ import annotations

import time

import pytest

from tests.migration_scenario import VENDORS, scenario_run
from tests.postgres import postgres_database

# The vendors this pass covers: SQLite always, PostgreSQL when the suite's own database is
# PostgreSQL. The case is not generated on SQLite (a skip may fail a CI run).

# Rows per table, before the move (old table names) and after it (new ones).
ROWS_BEFORE = {
    "institutions_institution": 1,
    "auth_user": 1,
    "institutions_membership": 1,
    "certmgr_certificate": 4,
    "certmgr_certificaterequest": 1,
    "certmgr_expirythreshold": 2,
    "saleschannels_saleschannel": 2,
    "certmgr_auditevent": 1,
    "certmgr_notification": 2,
    "certmgr_expirycheck": 1,
    "acme_client_acmeaccount": 1,
    "acme_client_acmeorder": 1,
    "django_content_type": 6,
    "auth_permission": 1,
    "django_admin_log": 1,
}
ROWS_AFTER = {
    "institutions_institution": 1,
    "auth_user": 1,
    "institutions_membership": 1,
    "certificates_certificate": 4,
    "certificates_certificaterequest": 1,
    "certificates_expirythreshold": 2,
    "saleschannels_saleschannel": 2,
    # The one carried, and saleschannels 0007's record that the managed channel counts as
    # verified (it held a managed certificate before proof of ownership was required).
    "core_auditevent": 2,
    "monitoring_notification": 2,
    "monitoring_expirycheck": 1,
    "acme_client_acmeaccount": 1,
    "acme_client_acmeorder": 1,
    "django_content_type": 6,
    "auth_permission": 1,
    "django_admin_log": 1,
}
CHECKS = [
    "old schema: certmgr tables, no new ones",
    "every migration applied",
    "row counts",
    "tables renamed",
    "rows equal, column by column",
    "foreign keys resolve",
    "keys decrypt",
    "content types moved with their ids",
    "admin history and permissions follow",
    "foreign keys reference the renamed tables",
    "foreign keys enforced",
    "unique constraint kept",
    "id sequences continue",
    "delete: unreferenced, protected, cascade",
    "vendor checks",
]

# The scenario, run by `python carry.py` with DATABASE_URL pointing at a fresh database. Its
# last line of output is a JSON summary; a failed check raises (exit code 1, traceback).
SCENARIO = r'''
import json
import sys
from datetime import timedelta

import django

django.setup()

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core import encryption

OLD_NODES = [
    ("certmgr", "0008_findings_faster"),
    ("saleschannels", "0004_apple_pay"),
    ("acme_client", "0001_initial"),
    ("institutions", "0002_notifications"),
]
PROJECT_APPS = {
    "core", "institutions", "certificates", "saleschannels", "acme_client", "monitoring",
    "certmgr",
}
# model: (old table, new app)
MOVED = {
    "auditevent": "core",
    "certificate": "certificates",
    "certificaterequest": "certificates",
    "expirythreshold": "certificates",
    "expirycheck": "monitoring",
    "notification": "monitoring",
}
NEW_TABLE = {f"certmgr_{model}": f"{app}_{model}" for model, app in MOVED.items()}
# Tables counted before the move (old names) and after it (NEW_TABLE's names).
TABLES = [
    "institutions_institution", "auth_user", "institutions_membership",
    "certmgr_certificate", "certmgr_certificaterequest", "certmgr_expirythreshold",
    "saleschannels_saleschannel", "certmgr_auditevent", "certmgr_notification",
    "certmgr_expirycheck", "acme_client_acmeaccount", "acme_client_acmeorder",
    "django_content_type", "auth_permission", "django_admin_log",
]
# Models compared row by row: (label before, label after).
COMPARED = [(f"certmgr.{model}", f"{app}.{model}") for model, app in MOVED.items()] + [
    (label, label)
    for label in (
        "institutions.institution",
        "institutions.membership",
        "auth.user",
        "saleschannels.saleschannel",
        "acme_client.acmeaccount",
        "acme_client.acmeorder",
        "admin.logentry",
        "auth.permission",
    )
]
checks = []


def check(name):
    checks.append(name)
    print(f"ok: {name}", file=sys.stderr)


def key_pem():
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def table_counts(tables):
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def rows(model):
    """Every row as {column: value}, by id; binary values as bytes (memoryview on PostgreSQL)."""
    return [
        {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}
        for row in model._default_manager.order_by("pk").values()
    ]


def fails_at_commit(function, **kwargs):
    """True when function(**kwargs) in a transaction of its own is refused by the database."""
    try:
        with transaction.atomic():
            function(**kwargs)
    except IntegrityError:
        return True
    return False


# 1. The schema from before the move.
executor = MigrationExecutor(connection)
old_targets = OLD_NODES + [
    node for node in executor.loader.graph.leaf_nodes() if node[0] not in PROJECT_APPS
]
executor.migrate(old_targets)
old = executor.loader.project_state(old_targets).apps
tables = set(connection.introspection.table_names())
assert "certmgr_certificate" in tables, sorted(tables)
assert not tables & {f"{app}_{model}" for model, app in MOVED.items()}, sorted(tables)
check("old schema: certmgr tables, no new ones")

# 2. Rows written through the historical models, as the old code stored them.
now = timezone.now()
Institution = old.get_model("institutions", "Institution")
Membership = old.get_model("institutions", "Membership")
User = old.get_model("auth", "User")
OldCertificate = old.get_model("certmgr", "Certificate")
OldRequest = old.get_model("certmgr", "CertificateRequest")
OldThreshold = old.get_model("certmgr", "ExpiryThreshold")
OldAuditEvent = old.get_model("certmgr", "AuditEvent")
OldNotification = old.get_model("certmgr", "Notification")
OldExpiryCheck = old.get_model("certmgr", "ExpiryCheck")
SalesChannel = old.get_model("saleschannels", "SalesChannel")
AcmeAccount = old.get_model("acme_client", "AcmeAccount")
AcmeOrder = old.get_model("acme_client", "AcmeOrder")
ContentType = old.get_model("contenttypes", "ContentType")
Permission = old.get_model("auth", "Permission")
LogEntry = old.get_model("admin", "LogEntry")

keys = {name: key_pem() for name in ("renewed", "renewal", "merchant", "request", "acme")}
institution = Institution.objects.create(
    name="Acme Tickets", slug="acme-tickets", notification_emails="ops@acme.test"
)
user = User.objects.create(username="alice", password="!", email="alice@acme.test")
Membership.objects.create(user=user, institution=institution, role="manager")
renewed = OldCertificate.objects.create(
    institution=institution,
    name="shop 2025",
    certificate_pem="-----BEGIN CERTIFICATE-----\nrenewed\n-----END CERTIFICATE-----\n",
    private_key_encrypted=encryption.encrypt(keys["renewed"].encode()),
    common_name="shop.acme.test",
    domains=["shop.acme.test", "www.shop.acme.test"],
    fingerprint_sha256="AA:" * 31 + "AA",
    key_type="ec",
    key_curve="secp256r1",
    not_before=now - timedelta(days=85),
    not_after=now + timedelta(days=5),
    expires_at=now + timedelta(days=5),
    warnings=["chain incomplete"],
    created_by=user,
)
renewal = OldCertificate.objects.create(
    institution=institution,
    name="shop 2026",
    certificate_pem="-----BEGIN CERTIFICATE-----\nrenewal\n-----END CERTIFICATE-----\n",
    private_key_encrypted=encryption.encrypt(keys["renewal"].encode()),
    domains=["shop.acme.test"],
    not_before=now - timedelta(days=1),
    not_after=now + timedelta(days=89),
    expires_at=now + timedelta(days=89),
    replaces=renewed,
    created_by=user,
)
merchant = OldCertificate.objects.create(
    institution=institution,
    kind="apple_merchant_identity",
    name="merchant identity",
    merchant_identifier="merchant.test.acme",
    private_key_encrypted=encryption.encrypt(keys["merchant"].encode()),
    expires_at=now + timedelta(days=700),
)
proof = OldCertificate.objects.create(
    institution=institution,
    kind="apple_identity_proof",
    name="domain association",
    content=b"\x00\x01 identity proof \xff",
    expires_at=now + timedelta(days=365),
    expiry_source="manual",
)
OldThreshold.objects.create(certificate=renewed, name="7d", crossed_at=now - timedelta(days=2))
OldThreshold.objects.create(certificate=renewal, name="30d", crossed_at=now + timedelta(days=59))
request = OldRequest.objects.create(
    institution=institution,
    kind="apple_merchant_identity",
    name="merchant identity",
    merchant_identifier="merchant.test.acme",
    private_key_encrypted=encryption.encrypt(keys["request"].encode()),
    csr_pem="-----BEGIN CERTIFICATE REQUEST-----\ncsr\n-----END CERTIFICATE REQUEST-----\n",
    completed_at=now,
    certificate=merchant,
    created_by=user,
)
shop = SalesChannel.objects.create(
    institution=institution,
    name="Shop",
    hostname="shop.acme.test",
    ssl_mode="uploaded",
    certificate=renewal,
    active_certificate=renewal,
    probe_status="mismatch",
    probe_error="TLS handshake for shop.acme.test at 10.0.0.7:443 failed (WRONG_VERSION_NUMBER).",
)
pay = SalesChannel.objects.create(
    institution=institution,
    name="Pay",
    hostname="pay.acme.test",
    apple_pay_enabled=True,
    apple_identity_proof=proof,
    apple_probe_error="No valid identity proof to serve: the one chosen for this channel has...",
)
OldAuditEvent.objects.create(
    institution=institution,
    actor=user,
    action="certificate.upload",
    target_type="certificate",
    target_id=renewal.pk,
    target_repr=renewal.name,
    details={"replaces": renewed.pk},
)
expiry_notice = OldNotification.objects.create(
    institution=institution,
    kind="certificate_expiry",
    threshold="7d",
    certificate=renewed,
    expires_at=renewed.expires_at,
    emailed_at=now,
)
probe_notice = OldNotification.objects.create(
    institution=institution,
    kind="probe_problem",
    threshold="mismatch",
    episode="episode-1",
    channel=shop,
    details={"served": "BB:" * 31 + "BB"},
)
OldExpiryCheck.objects.create(checked_until=now)
account = AcmeAccount.objects.create(
    directory_url="https://acme.test/directory",
    key_encrypted=encryption.encrypt(keys["acme"].encode()),
    uri="https://acme.test/account/1",
    contact_email="ops@acme.test",
)
order = AcmeOrder.objects.create(
    channel=shop,
    hostname="shop.acme.test",
    directory_url="https://acme.test/directory",
    order_url="https://acme.test/order/1",
    status="valid",
    certificate=renewal,
    finished_at=now,
)
# Content types as post_migrate created them for the old app (executor.migrate sends no
# signal), a permission on one and an admin log entry pointing at a certificate through it.
content_type_ids = {
    model: ContentType.objects.get_or_create(app_label="certmgr", model=model)[0].pk
    for model in MOVED
}
permission = Permission.objects.create(
    name="Can change certificate",
    content_type_id=content_type_ids["certificate"],
    codename="change_certificate",
)
user.user_permissions.add(permission)
log_entry = LogEntry.objects.create(
    action_time=now,
    user=user,
    content_type_id=content_type_ids["certificate"],
    object_id=str(renewal.pk),
    object_repr=renewal.name,
    action_flag=2,
    change_message="[]",
)

before = {new: rows(old.get_model(old_label)) for old_label, new in COMPARED}
# saleschannels 0006: the probe's free-text errors become typed reasons (the generic one, or
# the Apple Pay reason a known text named).
for channel in before["saleschannels.saleschannel"]:
    channel["probe_failure"] = "other" if channel.pop("probe_error") else ""
    apple = channel.pop("apple_probe_error")
    channel["apple_probe_failure"] = "proof_expired" if apple else ""
counts_before = table_counts(TABLES)
ids = {
    "institution": institution.pk, "user": user.pk, "renewed": renewed.pk,
    "renewal": renewal.pk, "merchant": merchant.pk, "proof": proof.pk, "request": request.pk,
    "shop": shop.pk, "pay": pay.pk, "expiry_notice": expiry_notice.pk,
    "probe_notice": probe_notice.pk, "account": account.pk, "order": order.pk,
    "log_entry": log_entry.pk,
}

# 3. The move, with a fresh loader that sees what is applied.
executor = MigrationExecutor(connection)
executor.migrate(executor.loader.graph.leaf_nodes())
executor = MigrationExecutor(connection)
assert not executor.migration_plan(executor.loader.graph.leaf_nodes())
check("every migration applied")

from acme_client.models import AcmeAccount, AcmeOrder  # noqa: E402
from certificates.models import Certificate, CertificateRequest, ExpiryThreshold  # noqa: E402
from core.models import AuditEvent  # noqa: E402
from django.apps import apps  # noqa: E402
from django.contrib.admin.models import LogEntry  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db.models import ProtectedError  # noqa: E402
from institutions.models import Institution  # noqa: E402
from monitoring.models import ExpiryCheck, Notification  # noqa: E402
from saleschannels.models import SalesChannel  # noqa: E402

counts_after = table_counts([NEW_TABLE.get(table, table) for table in TABLES])
# Every row carried; the audit trail gains saleschannels 0007's record (see ROWS_AFTER).
carried = dict(zip(counts_before, counts_after.values(), strict=True))
carried["certmgr_auditevent"] -= 1
assert carried == counts_before, (counts_before, counts_after)
check("row counts")

tables = set(connection.introspection.table_names())
for model, app in MOVED.items():
    db_table = apps.get_model(app, model)._meta.db_table
    assert db_table == f"{app}_{model}", db_table
    assert db_table in tables, (db_table, sorted(tables))
assert Certificate._meta.db_table == "certificates_certificate"
assert not [table for table in tables if table.startswith("certmgr_")], sorted(tables)
check("tables renamed")

for label, stored in before.items():
    carried = rows(apps.get_model(label))
    # Less the record saleschannels 0007 adds (see ROWS_AFTER): not carried, new.
    carried = [row for row in carried if row.get("action") != "channel.hostname_verified"]
    # Columns added after the move (proof of ownership, status) are not carried data.
    columns = set(stored[0]) if stored else set()
    carried = [{key: value for key, value in row.items() if key in columns} for row in carried]
    assert carried == stored, (label, stored, carried)
content = bytes(Certificate.objects.get(pk=ids["proof"]).content)
assert content == b"\x00\x01 identity proof \xff", content
check("rows equal, column by column")

shop = SalesChannel.objects.get(pk=ids["shop"])
renewal = Certificate.objects.get(pk=ids["renewal"])
assert isinstance(shop.certificate, Certificate) and shop.certificate.pk == ids["renewal"]
assert shop.active_certificate.pk == ids["renewal"]
assert SalesChannel.objects.get(pk=ids["pay"]).apple_identity_proof.pk == ids["proof"]
assert renewal.replaces.pk == ids["renewed"]
assert list(renewal.replaced_by.all()) == []
assert [c.pk for c in Certificate.objects.get(pk=ids["renewed"]).replaced_by.all()] == [
    ids["renewal"]
]
assert AcmeOrder.objects.get(pk=ids["order"]).certificate.pk == ids["renewal"]
assert AcmeOrder.objects.get(pk=ids["order"]).channel.pk == ids["shop"]
assert Notification.objects.get(pk=ids["expiry_notice"]).certificate.pk == ids["renewed"]
assert Notification.objects.get(pk=ids["probe_notice"]).channel.pk == ids["shop"]
assert ExpiryThreshold.objects.get(name="30d").certificate.pk == ids["renewal"]
assert CertificateRequest.objects.get(pk=ids["request"]).certificate.pk == ids["merchant"]
assert Certificate.objects.get(pk=ids["merchant"]).certificate_request.pk == ids["request"]
assert sorted(c.pk for c in renewal.chosen_by_channels.all()) == [ids["shop"]]
assert sorted(c.pk for c in renewal.active_on_channels.all()) == [ids["shop"]]
assert [n.pk for n in Certificate.objects.get(pk=ids["renewed"]).notifications.all()] == [
    ids["expiry_notice"]
]
carried_events = Institution.objects.get(pk=ids["institution"]).audit_events.exclude(
    action="channel.hostname_verified"
)
assert [e.target_id for e in carried_events] == [ids["renewal"]]
assert carried_events.get().actor.pk == ids["user"]
check("foreign keys resolve")

for name in ("renewed", "renewal", "merchant"):
    assert Certificate.objects.get(pk=ids[name]).private_key_pem() == keys[name], name
assert CertificateRequest.objects.get(pk=ids["request"]).private_key_pem() == keys["request"]
assert Certificate.objects.get(pk=ids["proof"]).private_key_encrypted == ""
account_key = AcmeAccount.objects.get(pk=ids["account"]).key_encrypted
assert encryption.decrypt(account_key).decode() == keys["acme"]
check("keys decrypt")

for model, app in MOVED.items():
    content_type = ContentType.objects.get(app_label=app, model=model)
    assert content_type.pk == content_type_ids[model], (model, content_type.pk)
    assert content_type.model_class() is apps.get_model(app, model)
assert not ContentType.objects.filter(app_label="certmgr").exists()
ContentType.objects.clear_cache()
assert ContentType.objects.get_for_model(Certificate).pk == content_type_ids["certificate"]
check("content types moved with their ids")

edited = LogEntry.objects.get(pk=ids["log_entry"]).get_edited_object()
assert isinstance(edited, Certificate) and edited.pk == ids["renewal"], edited
alice = get_user_model().objects.get(pk=ids["user"])
assert alice.has_perm("certificates.change_certificate")
assert not alice.has_perm("certmgr.change_certificate")
check("admin history and permissions follow")

# The database's own foreign keys point at the renamed tables (get_relations reads them from
# the schema: SQLite's CREATE TABLE text, PostgreSQL's pg_constraint).
to_certificate = set()
with connection.cursor() as cursor:
    for table in sorted(tables):
        for column, (_, target) in connection.introspection.get_relations(cursor, table).items():
            assert not target.startswith("certmgr_"), (table, column, target)
            if target == "certificates_certificate":
                to_certificate.add(f"{table}.{column}")
assert to_certificate == {
    "saleschannels_saleschannel.certificate_id",
    "saleschannels_saleschannel.active_certificate_id",
    "saleschannels_saleschannel.apple_identity_proof_id",
    "acme_client_acmeorder.certificate_id",
    "monitoring_notification.certificate_id",
    "certificates_expirythreshold.certificate_id",
    "certificates_certificaterequest.certificate_id",
    "certificates_certificate.replaces_id",
}, sorted(to_certificate)
check("foreign keys reference the renamed tables")

MISSING = 987654321
enforced = [
    (SalesChannel, ids["shop"], "certificate_id"),
    (SalesChannel, ids["shop"], "active_certificate_id"),
    (SalesChannel, ids["pay"], "apple_identity_proof_id"),
    (AcmeOrder, ids["order"], "certificate_id"),
    (AcmeOrder, ids["order"], "channel_id"),
    (Notification, ids["expiry_notice"], "certificate_id"),
    (Notification, ids["probe_notice"], "channel_id"),
    (ExpiryThreshold, ExpiryThreshold.objects.get(name="30d").pk, "certificate_id"),
    (CertificateRequest, ids["request"], "certificate_id"),
    (Certificate, ids["renewal"], "replaces_id"),
    (Certificate, ids["renewal"], "institution_id"),
    (Certificate, ids["renewal"], "created_by_id"),
    (AuditEvent, carried_events.get().pk, "institution_id"),
    (AuditEvent, carried_events.get().pk, "actor_id"),
    (LogEntry, ids["log_entry"], "content_type_id"),
]
for model, pk, column in enforced:
    assert fails_at_commit(
        model.objects.filter(pk=pk).update, **{column: MISSING}
    ), f"{model._meta.db_table}.{column} accepts a missing id"
assert fails_at_commit(
    ExpiryThreshold.objects.create, certificate_id=MISSING, name="1d", crossed_at=now
)
check("foreign keys enforced")

assert fails_at_commit(
    ExpiryThreshold.objects.create, certificate=renewal, name="30d", crossed_at=now
)
check("unique constraint kept")

# New rows through the current models continue each renamed table's id sequence (on
# PostgreSQL the identity sequence has to have followed the rename).
institution = Institution.objects.get(pk=ids["institution"])
new_rows = {
    Certificate: lambda: Certificate.objects.create(
        institution=institution, name="after the move", expires_at=now + timedelta(days=30)
    ),
    CertificateRequest: lambda: CertificateRequest.objects.create(
        institution=institution,
        kind="apple_payment_processing",
        name="processing",
        merchant_identifier="merchant.test.acme",
        csr_pem="csr",
    ),
    ExpiryThreshold: lambda: ExpiryThreshold.objects.create(
        certificate=renewal, name="14d", crossed_at=now + timedelta(days=75)
    ),
    AuditEvent: lambda: AuditEvent.objects.create(
        institution=institution,
        action="certificate.upload",
        target_type="certificate",
        target_id=0,
        target_repr="after the move",
    ),
    Notification: lambda: Notification.objects.create(
        institution=institution, kind="certificate_expiry", threshold="14d", certificate=renewal
    ),
    ExpiryCheck: lambda: ExpiryCheck.objects.create(checked_until=now),
}
created = {}
for model, create in new_rows.items():
    highest = max(row["id"] for row in before[model._meta.label_lower])
    created[model] = create()
    assert created[model].pk > highest, (model._meta.label, created[model].pk, highest)
check("id sequences continue")

fresh = created[Certificate]
fresh.delete()
assert not Certificate.objects.filter(pk=fresh.pk).exists()
try:
    Certificate.objects.get(pk=ids["proof"]).delete()
except ProtectedError:
    pass
else:
    raise AssertionError("the identity proof a channel uses was deleted")
Certificate.objects.get(pk=ids["renewed"]).delete()
assert not Notification.objects.filter(pk=ids["expiry_notice"]).exists()
assert not ExpiryThreshold.objects.filter(name="7d").exists()
assert Certificate.objects.get(pk=ids["renewal"]).replaces is None
check("delete: unreferenced, protected, cascade")

with connection.cursor() as cursor:
    if connection.vendor == "sqlite":
        cursor.execute("PRAGMA foreign_key_check")
        assert cursor.fetchall() == []
        # No table's CREATE statement still names an old table in a REFERENCES clause.
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE %s ESCAPE '!'",
            ['%REFERENCES "certmgr!_%'],
        )
        assert cursor.fetchall() == []
    else:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' "
            "AND (confrelid::regclass::text LIKE %s OR conrelid::regclass::text LIKE %s)",
            ["certmgr\\_%", "certmgr\\_%"],
        )
        assert cursor.fetchall() == []
        for model, app in MOVED.items():
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f"{app}_{model}"])
            assert cursor.fetchone()[0], f"{app}_{model} has no id sequence"
check("vendor checks")

print(
    json.dumps(
        {
            "vendor": connection.vendor,
            "before": counts_before,
            "after": counts_after,
            "checks": checks,
        }
    )
)
'''


@pytest.mark.parametrize("vendor", VENDORS)
def test_moving_the_models_to_their_apps_keeps_every_row_and_key(tmp_path, vendor):
    started = time.monotonic()
    if vendor == "sqlite":
        summary = scenario_run(
            tmp_path, f"sqlite:///{tmp_path / 'carry.sqlite3'}", SCENARIO, name="carry"
        )
    else:
        with postgres_database(name_prefix="certmgr_carry") as database_url:
            summary = scenario_run(tmp_path, database_url, SCENARIO, name="carry")

    assert summary["vendor"] == vendor
    assert summary["before"] == ROWS_BEFORE
    assert summary["after"] == ROWS_AFTER
    assert summary["checks"] == CHECKS
    print(f"{vendor}: {time.monotonic() - started:.1f} s")
