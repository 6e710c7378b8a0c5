"""Django admin for platform staff: institutions and who belongs to them.

An institution's notification settings are shown, not edited, here: the back office's
notification settings page checks the addresses (a webhook only to a public address) and
records the change in the audit trail. Memberships are the admin's to change.
"""

from django.contrib import admin

from core.admin import SecretColumnsHidden

from .models import Institution, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Institution)
class InstitutionAdmin(SecretColumnsHidden, admin.ModelAdmin):
    # The webhook signing secrets: managers read theirs on the Notifications page.
    secret_columns = ("webhook_secret_encrypted", "webhook_secret_previous_encrypted")
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["notification_emails", "webhook_url"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "institution", "role"]
    list_filter = ["role", "institution"]
    search_fields = ["user__username", "institution__name"]
