"""Django admin for platform staff: sales channels, shown read-only but for their name
(core.admin.WrittenByTheBackOffice). The hostname, the SSL mode and the certificates a channel
uses or serves as its Apple Pay file are changed on its pages in the back office, which check
them (the hostname rules, the institution's own valid certificates) and bring the edge in
line; its institution stays, since its history (audit trail, ACME orders, notifications)
belongs to the institution it was made in. Channels are created and deleted there too."""

from django.contrib import admin

from core.admin import WrittenByTheBackOffice

from .models import SalesChannel


@admin.register(SalesChannel)
class SalesChannelAdmin(WrittenByTheBackOffice, admin.ModelAdmin):
    list_display = ["name", "hostname", "institution", "ssl_mode", "active_certificate"]
    list_filter = ["ssl_mode", "apple_pay_enabled", "institution"]
    search_fields = ["name", "hostname"]
    editable_fields = ("name",)
