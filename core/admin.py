"""Django admin for platform staff: the audit trail (read-only), and the mixin every admin
of a model with secret columns uses.

Secret columns (encrypted keys, raw uploads that may be anything a user sent) never reach the
admin: they are left out of the forms, and they cannot be used as changelist filters either,
since `?private_key_encrypted__startswith=...` would tell by its counts what the column holds,
one character at a time.
"""

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP

from .models import AuditEvent


class SecretColumnsHidden:
    """A ModelAdmin mixin keeping `secret_columns` out of forms and changelist filters."""

    secret_columns: tuple[str, ...] = ()

    def get_exclude(self, request, obj=None):
        return [*(super().get_exclude(request, obj) or ()), *self.secret_columns]

    def lookup_allowed(self, lookup, value, request=None):
        if lookup.split(LOOKUP_SEP, 1)[0] in self.secret_columns:
            return False
        return super().lookup_allowed(lookup, value, request)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "target_repr", "actor", "institution"]
    list_filter = ["action", "institution"]
    search_fields = ["target_repr"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
