# The audit trail moves here from the certmgr app with its data: the model is taken over in
# Django's state, and its table renamed from certmgr_auditevent.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        # Every migration from before the move, so that no table is created after the rename
        # with a reference to the old name.
        ('certmgr', '0008_findings_faster'),
        ('acme_client', '0001_initial'),
        ('saleschannels', '0004_apple_pay'),
        ('institutions', '0002_notifications'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables exist: they were created by the certmgr app's migrations.
            state_operations=[
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('action', models.CharField(choices=[('certificate.upload', 'Certificate uploaded'), ('certificate.delete', 'Certificate deleted'), ('channel.create', 'Sales channel created'), ('channel.update', 'Sales channel changed'), ('channel.delete', 'Sales channel deleted'), ('channel.ssl_mode', 'SSL management changed'), ('channel.certificate_issued', 'Certificate issued (ACME)'), ('channel.renewal_failed', 'Certificate renewal failed'), ('channel.renew_now', 'Renewal requested'), ('institution.notifications', 'Notification settings changed'), ('channel.apple_pay', 'Apple Pay settings changed'), ('certificate_request.create', 'Key and CSR created'), ('certificate_request.complete', 'Certificate received for the CSR'), ('certificate_request.delete', 'CSR deleted')], max_length=40)),
                        ('target_type', models.CharField(max_length=40)),
                        ('target_id', models.BigIntegerField()),
                        ('target_repr', models.CharField(max_length=255)),
                        ('details', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('institution', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='audit_events', to='institutions.institution')),
                    ],
                    options={
                        'db_table': 'certmgr_auditevent',
                        'ordering': ['-created_at', '-pk'],
                        'indexes': [models.Index(fields=['target_type', 'target_id'], name='audit_target')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='auditevent', table=None),
    ]
