# The certmgr app hands its models over to core (AuditEvent), certificates (Certificate,
# CertificateRequest, ExpiryThreshold) and monitoring (Notification, ExpiryCheck), whose first
# migrations took them over with their tables. Here they leave certmgr's state only (no table
# is dropped), and their content types follow them, so that admin history and permissions
# keep pointing at them.

from django.db import migrations

MOVED = {
    "auditevent": "core",
    "certificate": "certificates",
    "certificaterequest": "certificates",
    "expirythreshold": "certificates",
    "expirycheck": "monitoring",
    "notification": "monitoring",
}


def content_types_move(apps, schema_editor, *, backwards=False):
    """Point the moved models' content types at their new app (or back). A content type the
    target app already has was made by a `migrate` of that app alone, before this migration:
    only its own new permissions point at it, so it gives way to the one history points at."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app in MOVED.items():
        source, target = ("certmgr", app) if not backwards else (app, "certmgr")
        moving = ContentType.objects.filter(app_label=source, model=model)
        if not moving.exists():
            continue
        ContentType.objects.filter(app_label=target, model=model).delete()
        moving.update(app_label=target)


def content_types_back(apps, schema_editor):
    content_types_move(apps, schema_editor, backwards=True)


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('certificates', '0001_initial'),
        ('monitoring', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('acme_client', '0002_certificates_app'),
        ('certmgr', '0008_findings_faster'),
        ('saleschannels', '0005_certificates_app'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='auditevent',
                    name='actor',
                ),
                migrations.RemoveField(
                    model_name='auditevent',
                    name='institution',
                ),
                migrations.RemoveField(
                    model_name='certificate',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='certificate',
                    name='institution',
                ),
                migrations.RemoveField(
                    model_name='certificate',
                    name='replaces',
                ),
                migrations.RemoveField(
                    model_name='certificaterequest',
                    name='certificate',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='certificate',
                ),
                migrations.RemoveField(
                    model_name='expirythreshold',
                    name='certificate',
                ),
                migrations.RemoveField(
                    model_name='certificaterequest',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='certificaterequest',
                    name='institution',
                ),
                migrations.DeleteModel(
                    name='ExpiryCheck',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='channel',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='institution',
                ),
                migrations.DeleteModel(
                    name='AuditEvent',
                ),
                migrations.DeleteModel(
                    name='Certificate',
                ),
                migrations.DeleteModel(
                    name='ExpiryThreshold',
                ),
                migrations.DeleteModel(
                    name='CertificateRequest',
                ),
                migrations.DeleteModel(
                    name='Notification',
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_move, content_types_back),
    ]
