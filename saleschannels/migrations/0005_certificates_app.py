# Certificate moved to the certificates app (its table renamed, the same rows): the foreign
# keys follow in Django's state; the database's constraints follow the renamed table.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('certificates', '0001_initial'),
        ('saleschannels', '0004_apple_pay'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables exist: they were created by the certmgr app's migrations.
            state_operations=[
                migrations.AlterField(
                    model_name='saleschannel',
                    name='active_certificate',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='active_on_channels', to='certificates.certificate'),
                ),
                migrations.AlterField(
                    model_name='saleschannel',
                    name='apple_identity_proof',
                    field=models.ForeignKey(blank=True, limit_choices_to={'kind': 'apple_identity_proof'}, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='proof_for_channels', to='certificates.certificate'),
                ),
                migrations.AlterField(
                    model_name='saleschannel',
                    name='certificate',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='chosen_by_channels', to='certificates.certificate'),
                ),
            ],
            database_operations=[],
        ),
    ]
