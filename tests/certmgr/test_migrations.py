"""Data migrations, run on a database holding rows of the schema before them."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("certmgr", "0006_apple_pay")]
AFTER = [("certmgr", "0007_expiry_thresholds")]


@pytest.fixture
def migrate(transactional_db):
    """migrate(targets) -> the historical apps at those migrations; back to the latest after."""

    def to(targets):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    yield to
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_certificates_in_use_get_their_thresholds(migrate):
    apps = migrate(BEFORE)
    Institution = apps.get_model("institutions", "Institution")
    Certificate = apps.get_model("certmgr", "Certificate")
    institution = Institution.objects.create(name="Acme", slug="acme")
    now = timezone.now()
    expiring = Certificate.objects.create(
        institution=institution,
        name="5 days left",
        expires_at=now + timedelta(days=5),
        not_before=now - timedelta(days=360),
    )
    old = Certificate.objects.create(
        institution=institution, name="renewed", expires_at=now + timedelta(days=2)
    )
    Certificate.objects.create(
        institution=institution, name="renewal", expires_at=now + timedelta(days=90), replaces=old
    )

    apps = migrate(AFTER)
    ExpiryThreshold = apps.get_model("certmgr", "ExpiryThreshold")
    stored = ExpiryThreshold.objects.filter(certificate_id=expiring.pk).order_by("crossed_at")
    # The newest threshold crossed is due at once, the others lie ahead.
    assert [threshold.name for threshold in stored] == ["7d", "3d", "1d", "0d"]
    assert stored[0].crossed_at <= timezone.now()
    assert not ExpiryThreshold.objects.filter(certificate_id=old.pk).exists()
