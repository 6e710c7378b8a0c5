from django.contrib import admin

from .models import SalesChannel


@admin.register(SalesChannel)
class SalesChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "hostname", "institution", "ssl_mode", "active_certificate"]
    list_filter = ["ssl_mode", "apple_pay_enabled", "institution"]
    search_fields = ["name", "hostname"]
    raw_id_fields = ["certificate", "active_certificate", "apple_identity_proof"]
