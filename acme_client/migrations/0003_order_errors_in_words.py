"""ACME orders recorded before failures were typed kept the raw error text (a library's
exception, the CA's detail), which the channel page shows. From now on an order's error is
the plain words of its typed reason (acme_client/problems.py) and the raw detail goes to the
log only; the old rows' text becomes one generic sentence. Not reversible: the raw text is
not kept anywhere else."""

from django.db import migrations

GENERIC = (
    "The order failed (recorded before failures were typed; the details are in the "
    "platform's log)."
)


def forwards(apps, schema_editor):
    AcmeOrder = apps.get_model("acme_client", "AcmeOrder")
    AcmeOrder.objects.exclude(error="").update(error=GENERIC)


class Migration(migrations.Migration):
    dependencies = [("acme_client", "0002_certificates_app")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
