# Expiry monitoring's records move here from the certmgr app with their data: the models are
# taken over in Django's state, and their tables renamed from certmgr_*.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        # Every migration from before the move, so that no table is created after the rename
        # with a reference to the old name.
        ('certmgr', '0008_findings_faster'),
        ('acme_client', '0001_initial'),
        ('saleschannels', '0004_apple_pay'),
        ('certificates', '0001_initial'),
        ('institutions', '0002_notifications'),
        ('saleschannels', '0005_certificates_app'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables exist: they were created by the certmgr app's migrations.
            state_operations=[
                migrations.CreateModel(
                    name='ExpiryCheck',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('checked_until', models.DateTimeField()),
                    ],
                    options={'db_table': 'certmgr_expirycheck'},
                ),
                migrations.CreateModel(
                    name='Notification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('certificate_expiry', 'Certificate expiry'), ('renewal_failing', 'Renewal failing'), ('probe_problem', 'Served certificate wrong')], max_length=24)),
                        ('threshold', models.CharField(max_length=32)),
                        ('episode', models.CharField(blank=True, max_length=64)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('details', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('emailed_at', models.DateTimeField(blank=True, null=True)),
                        ('webhook_delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('webhook_error', models.TextField(blank=True)),
                        ('certificate', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='certificates.certificate')),
                        ('channel', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='saleschannels.saleschannel')),
                        ('institution', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='institutions.institution')),
                    ],
                    options={
                        'db_table': 'certmgr_notification',
                        'ordering': ['-created_at', '-pk'],
                        'indexes': [models.Index(fields=['institution', 'created_at'], name='notification_recent'), models.Index(condition=models.Q(('emailed_at__isnull', True)), fields=['created_at'], name='notification_unsent')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('certificate__isnull', False)), fields=('certificate', 'threshold'), name='notification_once_per_certificate_threshold'), models.UniqueConstraint(condition=models.Q(('channel__isnull', False)), fields=('channel', 'threshold', 'episode'), name='notification_once_per_channel_threshold')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='expirycheck', table=None),
        migrations.AlterModelTable(name='notification', table=None),
    ]
