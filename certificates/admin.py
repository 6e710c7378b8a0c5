"""Django admin for platform staff: certificates and key-and-CSR requests.

Secret columns (the encrypted keys, and the raw upload, which may be anything a user sent)
never reach the admin: they are left out of the forms, and they cannot be used as changelist
filters either, since `?private_key_encrypted__startswith=...` would tell by its counts what the
column holds, one character at a time.
"""

from django.contrib import admin

from core.admin import SecretColumnsHidden

from .models import Certificate, CertificateRequest


@admin.register(Certificate)
class CertificateAdmin(SecretColumnsHidden, admin.ModelAdmin):
    list_display = ["name", "kind", "institution", "expires_at", "expiry_source", "source"]
    list_filter = ["kind", "source", "expiry_source", "institution"]
    search_fields = ["name", "common_name", "fingerprint_sha256", "merchant_identifier"]
    date_hierarchy = "expires_at"
    secret_columns = ("private_key_encrypted", "content")
    readonly_fields = [
        "certificate_pem", "chain_pem", "subject", "issuer", "serial_number",
        "fingerprint_sha256", "key_type", "key_size", "key_curve", "signature_hash",
        "not_before", "not_after", "created_by", "created_at",
    ]  # fmt: skip
    raw_id_fields = ["replaces"]


@admin.register(CertificateRequest)
class CertificateRequestAdmin(SecretColumnsHidden, admin.ModelAdmin):
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
    readonly_fields = ["csr_pem", "created_by", "created_at", "completed_at"]
    raw_id_fields = ["certificate"]
