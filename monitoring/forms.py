"""The form of an institution's notification settings (where its digests go)."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from institutions.models import Institution

from .webhooks import webhook_address_refusal

MAX_ADDRESSES = 20


class NotificationSettingsForm(forms.Form):
    notification_emails = forms.CharField(
        label="Notification e-mail addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=(
            "One per line (or separated by commas). Each run of the expiry check sends one "
            "digest here; when empty, the institution's managers get it."
        ),
    )
    webhook_url = forms.URLField(
        label="Webhook URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=(
            "Optional: the same findings as a JSON POST, e.g. to a chat tool's incoming webhook."
        ),
    )

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"]
        refusal = webhook_address_refusal(url, resolve=False) if url else ""
        if refusal:
            raise ValidationError(f"certmgr does not post to internal addresses: {refusal}.")
        return url

    def clean_notification_emails(self) -> str:
        text = self.cleaned_data["notification_emails"]
        addresses = Institution(notification_emails=text).notification_email_list
        invalid = []
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                invalid.append(address)
        if invalid:
            raise ValidationError("Not a valid e-mail address: " + ", ".join(invalid) + ".")
        if len(addresses) > MAX_ADDRESSES:
            raise ValidationError(f"At most {MAX_ADDRESSES} addresses.")
        unique = list(dict.fromkeys(address.lower() for address in addresses))
        return "\n".join(unique)
