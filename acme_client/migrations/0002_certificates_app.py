# Certificate moved to the certificates app (its table renamed, the same rows): the foreign
# key follows in Django's state; the database's constraint follows the renamed table.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('acme_client', '0001_initial'),
        ('certificates', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables exist: they were created by the certmgr app's migrations.
            state_operations=[
                migrations.AlterField(
                    model_name='acmeorder',
                    name='certificate',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='certificates.certificate'),
                ),
            ],
            database_operations=[],
        ),
    ]
