"""Data migrations, run on rows stored before them.

The function a RunPython operation runs is called with the project's app registry, on rows
written the way they were before the migration (here: certificates without thresholds). The
models it asks the certmgr app for have moved to the certificates app since (their tables
with them): the registry below answers for them there. That the move itself keeps every row
is test_migrations_carry_data.py's.
Migrating the shared test database back and forth instead would rebuild its tables under the
feet of the live servers and workers other tests leave running.
"""

import importlib
from datetime import timedelta

from django.apps import apps
from django.utils import timezone

from certificates.models import Certificate, ExpiryThreshold


class AppsAfterTheMove:
    """The project's app registry, answering for certmgr's models from the app they moved to."""

    MOVED = {"Certificate": "certificates", "ExpiryThreshold": "certificates"}

    def get_model(self, app_label: str, model_name: str):
        if app_label == "certmgr":
            app_label = self.MOVED[model_name]
        return apps.get_model(app_label, model_name)


expiry_thresholds = importlib.import_module("certmgr.migrations.0007_expiry_thresholds")


def test_certificates_in_use_get_their_thresholds(acme):
    now = timezone.now()
    expiring = Certificate.objects.create(
        institution=acme,
        name="5 days left",
        expires_at=now + timedelta(days=5),
        not_before=now - timedelta(days=360),
    )
    old = Certificate.objects.create(institution=acme, name="renewed", expires_at=now)
    Certificate.objects.create(
        institution=acme, name="renewal", expires_at=now + timedelta(days=90), replaces=old
    )
    assert not ExpiryThreshold.objects.exists()  # as stored before the migration

    expiry_thresholds.thresholds_store(AppsAfterTheMove(), schema_editor=None)

    stored = ExpiryThreshold.objects.filter(certificate=expiring).order_by("crossed_at")
    # The newest threshold crossed is due at once, the others lie ahead.
    assert [threshold.name for threshold in stored] == ["7d", "3d", "1d", "0d"]
    assert stored[0].crossed_at <= timezone.now()
    assert not ExpiryThreshold.objects.filter(certificate=old).exists()
    assert ExpiryThreshold.objects.filter(certificate__name="renewal").count() == 6


findings_faster = importlib.import_module("certmgr.migrations.0008_findings_faster")


def test_replaced_certificates_lose_the_thresholds_they_kept(acme):
    now = timezone.now()
    old = Certificate.objects.create(institution=acme, name="renewed", expires_at=now)
    renewal = Certificate.objects.create(
        institution=acme, name="renewal", expires_at=now + timedelta(days=90), replaces=old
    )
    # As certificate_upload kept them before: the thresholds the old one had crossed.
    ExpiryThreshold.objects.create(certificate=old, name="7d", crossed_at=now - timedelta(days=7))
    ExpiryThreshold.objects.create(certificate=old, name="3d", crossed_at=now - timedelta(days=3))
    ExpiryThreshold.objects.create(
        certificate=renewal, name="30d", crossed_at=now + timedelta(days=60)
    )

    findings_faster.replaced_thresholds_drop(AppsAfterTheMove(), schema_editor=None)

    assert not ExpiryThreshold.objects.filter(certificate=old).exists()
    assert list(renewal.expiry_thresholds.values_list("name", flat=True)) == ["30d"]
