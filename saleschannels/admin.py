"""Django admin for platform staff: sales channels, shown read-only but for their name
(core.admin.WrittenByTheBackOffice). The hostname, the SSL mode and the certificates a channel
uses or serves as its Apple Pay file are changed on its pages in the back office, which check
them (the hostname rules, the institution's own valid certificates) and bring the edge in
line; its institution stays, since its history (audit trail, ACME orders, notifications)
belongs to the institution it was made in. Channels are created and deleted there too.

Staff may approve a hostname's ownership here (README, "Onboarding a hostname"), recorded in
the audit trail under their name; staff also read the raw detail of the last renewal failure,
which tenants' pages never show."""

from django.contrib import admin, messages

from core.admin import WrittenByTheBackOffice
from core.hostname_display import hostname_text

from .models import SalesChannel, VerificationMethod
from .services import channel_hostname_verified_mark


@admin.register(SalesChannel)
class SalesChannelAdmin(WrittenByTheBackOffice, admin.ModelAdmin):
    list_display = [
        "name",
        "hostname_shown",
        "institution",
        "ssl_mode",
        "status",
        "hostname_verified_at",
        "active_certificate",
    ]
    list_filter = ["ssl_mode", "status", "hostname_verified_by", "apple_pay_enabled", "institution"]
    search_fields = ["name", "hostname"]
    editable_fields = ("name",)
    actions = ["hostname_approve"]

    @admin.display(description="hostname", ordering="hostname")
    def hostname_shown(self, channel) -> str:
        """An IDN in Unicode with its ASCII form beside it, as on the back office's pages."""
        return hostname_text(channel.hostname)

    @admin.action(description="Approve hostname ownership (staff approval)", permissions=["change"])
    def hostname_approve(self, request, queryset):
        approved = 0
        for channel in queryset.select_related("institution", "active_certificate"):
            approved += channel_hostname_verified_mark(
                channel=channel, method=VerificationMethod.STAFF, actor=request.user
            )
        skipped = queryset.count() - approved
        messages.success(
            request,
            f"{approved} hostname(s) approved"
            + (f"; {skipped} were verified already." if skipped else "."),
        )
