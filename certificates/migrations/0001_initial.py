# The certificate domain moves here from the certmgr app with its data: the models are taken
# over in Django's state (indexes and constraints exist already), and their tables renamed
# from certmgr_*.

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
                    name='Certificate',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('ssl', 'SSL'), ('apple_merchant_identity', 'Apple Pay merchant identity'), ('apple_payment_processing', 'Apple Pay payment processing'), ('apple_identity_proof', 'Apple Pay identity proof')], default='ssl', max_length=32)),
                        ('name', models.CharField(max_length=200)),
                        ('source', models.CharField(choices=[('uploaded', 'Uploaded'), ('managed', 'Managed (ACME)')], default='uploaded', max_length=10)),
                        ('merchant_identifier', models.CharField(blank=True, db_index=True, max_length=255)),
                        ('certificate_pem', models.TextField(blank=True)),
                        ('chain_pem', models.TextField(blank=True)),
                        ('content', models.BinaryField(blank=True, default=b'')),
                        ('private_key_encrypted', models.TextField(blank=True)),
                        ('subject', models.TextField(blank=True)),
                        ('common_name', models.CharField(blank=True, max_length=255)),
                        ('issuer', models.TextField(blank=True)),
                        ('domains', models.JSONField(blank=True, default=list)),
                        ('serial_number', models.CharField(blank=True, max_length=64)),
                        ('fingerprint_sha256', models.CharField(blank=True, db_index=True, max_length=95)),
                        ('key_type', models.CharField(blank=True, max_length=16)),
                        ('key_size', models.PositiveIntegerField(blank=True, null=True)),
                        ('key_curve', models.CharField(blank=True, max_length=16)),
                        ('signature_hash', models.CharField(blank=True, max_length=16)),
                        ('not_before', models.DateTimeField(blank=True, null=True)),
                        ('not_after', models.DateTimeField(blank=True, null=True)),
                        ('warnings', models.JSONField(blank=True, default=list)),
                        ('expires_at', models.DateTimeField()),
                        ('expiry_source', models.CharField(choices=[('parsed', 'Read from the certificate'), ('manual', 'Entered by hand')], default='parsed', max_length=10)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('institution', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='certificates', to='institutions.institution')),
                        ('replaces', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='replaced_by', to='certificates.certificate')),
                    ],
                    options={
                        'db_table': 'certmgr_certificate',
                        'ordering': ['expires_at', 'pk'],
                    },
                ),
                migrations.CreateModel(
                    name='CertificateRequest',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('apple_merchant_identity', 'Apple Pay merchant identity'), ('apple_payment_processing', 'Apple Pay payment processing')], max_length=32)),
                        ('name', models.CharField(max_length=200)),
                        ('merchant_identifier', models.CharField(db_index=True, max_length=255)),
                        ('private_key_encrypted', models.TextField(blank=True)),
                        ('csr_pem', models.TextField()),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('completed_at', models.DateTimeField(blank=True, null=True)),
                        ('certificate', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='certificate_request', to='certificates.certificate')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('institution', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='certificate_requests', to='institutions.institution')),
                    ],
                    options={
                        'db_table': 'certmgr_certificaterequest',
                        'ordering': ['-created_at', '-pk'],
                    },
                ),
                migrations.CreateModel(
                    name='ExpiryThreshold',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=16)),
                        ('crossed_at', models.DateTimeField()),
                        ('certificate', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='expiry_thresholds', to='certificates.certificate')),
                    ],
                    options={'db_table': 'certmgr_expirythreshold'},
                ),
                migrations.AddIndex(
                    model_name='certificate',
                    index=models.Index(fields=['expires_at', 'not_before'], name='cert_expiry'),
                ),
                migrations.AddIndex(
                    model_name='certificate',
                    index=models.Index(fields=['institution', 'expires_at', 'not_before'], name='cert_institution_expiry'),
                ),
                migrations.AddIndex(
                    model_name='certificaterequest',
                    index=models.Index(condition=models.Q(('completed_at__isnull', True)), fields=['institution', 'created_at'], name='request_pending'),
                ),
                migrations.AddIndex(
                    model_name='expirythreshold',
                    index=models.Index(fields=['crossed_at'], name='threshold_crossed_at'),
                ),
                migrations.AddConstraint(
                    model_name='expirythreshold',
                    constraint=models.UniqueConstraint(fields=('certificate', 'name'), name='threshold_once'),
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='certificate', table=None),
        migrations.AlterModelTable(name='certificaterequest', table=None),
        migrations.AlterModelTable(name='expirythreshold', table=None),
    ]
