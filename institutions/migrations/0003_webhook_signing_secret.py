"""Every institution gets a webhook signing secret of its own (institutions/signing_secrets.py).

The column is added empty and filled row by row: a default computed by AddField would be
one value, the same secret for every existing institution."""

from django.db import migrations, models

import institutions.signing_secrets


def secrets_fill(apps, schema_editor):
    Institution = apps.get_model("institutions", "Institution")
    for institution in Institution.objects.filter(webhook_secret_encrypted="").only("pk"):
        Institution.objects.filter(pk=institution.pk).update(
            webhook_secret_encrypted=institutions.signing_secrets.signing_secret_encrypted_new()
        )


class Migration(migrations.Migration):
    dependencies = [
        ("institutions", "0002_notifications"),
    ]

    operations = [
        migrations.AddField(
            model_name="institution",
            name="webhook_secret_encrypted",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(secrets_fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="institution",
            name="webhook_secret_encrypted",
            field=models.TextField(
                default=institutions.signing_secrets.signing_secret_encrypted_new, editable=False
            ),
        ),
        migrations.AddField(
            model_name="institution",
            name="webhook_secret_previous_encrypted",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="institution",
            name="webhook_secret_changed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
