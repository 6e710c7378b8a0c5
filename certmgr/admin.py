from django.contrib import admin

from .models import AuditEvent, Certificate, CertificateRequest


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "institution", "expires_at", "expiry_source", "source"]
    list_filter = ["kind", "source", "expiry_source", "institution"]
    search_fields = ["name", "common_name", "fingerprint_sha256", "merchant_identifier"]
    date_hierarchy = "expires_at"
    # The encrypted key and the raw upload never appear in the admin.
    exclude = ["private_key_encrypted", "content"]
    readonly_fields = [
        "certificate_pem", "chain_pem", "subject", "issuer", "serial_number",
        "fingerprint_sha256", "key_type", "key_size", "key_curve", "signature_hash",
        "not_before", "not_after", "created_by", "created_at",
    ]  # fmt: skip
    raw_id_fields = ["replaces"]


@admin.register(CertificateRequest)
class CertificateRequestAdmin(admin.ModelAdmin):
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
    # The encrypted key never appears in the admin.
    exclude = ["private_key_encrypted"]
    readonly_fields = ["csr_pem", "created_by", "created_at", "completed_at"]
    raw_id_fields = ["certificate"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "target_repr", "actor", "institution"]
    list_filter = ["action", "institution"]
    search_fields = ["target_repr"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
