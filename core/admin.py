"""Django admin for platform staff: the audit trail (read-only, never deleted), and the
mixins the other apps' admins use.

Secret columns (encrypted keys, raw uploads that may be anything a user sent) never reach the
admin: they are left out of the forms, and they cannot be used as changelist filters either,
since `?private_key_encrypted__startswith=...` would tell by its counts what the column holds,
one character at a time.

Rows the back office writes through its services (certificates, key-and-CSR requests, sales
channels) are shown, not edited, in the admin: an admin form would skip what those services
check and do (the upload's checks, the hostname rules, the certificates a channel may use,
the edge files, the audit trail), and could point one institution's object at another's. Only
the fields listed as editable (a name) can be changed there; they are added and deleted in the
back office, where a delete first says what it will stop (README, "Using it"). The models'
clean() refuses any link across institutions (core.tenancy) whatever form saves them.
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


class WrittenByTheBackOffice:
    """A ModelAdmin mixin for rows the back office's services write: every field is read-only
    but `editable_fields`, and rows are neither added nor deleted here."""

    editable_fields: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        hidden = set(getattr(self, "secret_columns", ()))  # not shown at all
        return [
            field.name
            for field in self.model._meta.fields
            if not field.primary_key
            and field.name not in self.editable_fields
            and field.name not in hidden
        ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "target_repr", "actor", "actor_token", "institution"]
    list_filter = ["action", "institution"]
    search_fields = ["target_repr"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the trail is kept whole
