"""Django admin for platform staff: certificates and key-and-CSR requests, shown read-only
but for their name (core.admin.WrittenByTheBackOffice): what the upload checked (the
material, its facts and expiry, its kind, its institution, what it replaces) cannot be
changed past those checks, and they are uploaded and deleted in the back office.

Secret columns (the encrypted keys, and the raw upload, which may be anything a user sent)
never reach the admin: they are left out of the forms, and they cannot be used as changelist
filters either, since `?private_key_encrypted__startswith=...` would tell by its counts what the
column holds, one character at a time.
"""

from django.contrib import admin

from core.admin import SecretColumnsHidden, WrittenByTheBackOffice

from .models import Certificate, CertificateRequest


@admin.register(Certificate)
class CertificateAdmin(WrittenByTheBackOffice, SecretColumnsHidden, admin.ModelAdmin):
    list_display = ["name", "kind", "institution", "expires_at", "expiry_source", "source"]
    list_filter = ["kind", "source", "expiry_source", "institution"]
    search_fields = ["name", "common_name", "fingerprint_sha256", "merchant_identifier"]
    date_hierarchy = "expires_at"
    secret_columns = ("private_key_encrypted", "content")
    editable_fields = ("name",)


@admin.register(CertificateRequest)
class CertificateRequestAdmin(WrittenByTheBackOffice, SecretColumnsHidden, admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "merchant_identifier",
        "institution",
        "created_at",
        "completed_at",
    ]
    list_filter = ["kind", "institution"]
    search_fields = ["name", "merchant_identifier"]
    secret_columns = ("private_key_encrypted",)
    editable_fields = ("name",)
