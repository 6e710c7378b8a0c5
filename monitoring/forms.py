"""The forms of expiry monitoring's pages: an institution's notification settings (where its
digests go) and the history's filters."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from certificates.filters import filter_day
from core.models import AuditEvent
from institutions.models import Institution

from .history import PLATFORM, TARGET_TYPES, HistoryFilters
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


NOT_A_CHOICE = "Not one of the choices offered. This filter is not applied."


class HistoryFiltersForm(forms.Form):
    """The history page's filters, read from the query string. A value that cannot be read
    is not applied and its filter says so (as the certificates list's: certificates/
    filters.py); an object id, though, names what the page is about, and a user who may not
    see it gets a 404 (the view)."""

    type = forms.ChoiceField(
        label="Object", required=False, error_messages={"invalid_choice": NOT_A_CHOICE}
    )
    object = forms.IntegerField(
        label="Object number",
        required=False,
        min_value=1,
        error_messages={
            "invalid": "Not an object number. This filter is not applied.",
            "min_value": "Not an object number. This filter is not applied.",
        },
    )
    q = forms.CharField(
        label="Name",
        required=False,
        strip=True,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "certificate, channel…"}),
    )
    actor = forms.ChoiceField(
        label="Who", required=False, error_messages={"invalid_choice": NOT_A_CHOICE}
    )
    action = forms.ChoiceField(
        label="What", required=False, error_messages={"invalid_choice": NOT_A_CHOICE}
    )
    institution = forms.ChoiceField(required=False, error_messages={"invalid_choice": NOT_A_CHOICE})
    since = forms.CharField(
        label="From", required=False, strip=True, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.CharField(
        label="To", required=False, strip=True, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data, *, actors, institutions):
        super().__init__(data)
        self.fields["type"].choices = [("", "All"), *TARGET_TYPES.items()]
        self.fields["actor"].choices = [
            ("", "Anyone"),
            (PLATFORM, "certmgr (automatic)"),
            *actors,
        ]
        self.fields["action"].choices = [("", "All"), *AuditEvent.Action.choices]
        self.fields["institution"].choices = [
            ("", "All"),
            *((institution.slug, institution.name) for institution in institutions),
        ]

    def clean_since(self):
        return filter_day(self.cleaned_data["since"])

    def clean_until(self):
        return filter_day(self.cleaned_data["until"])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("object") and not cleaned.get("type"):
            self.add_error("object", "An object number needs its type. This filter is not applied.")
            cleaned.pop("object", None)
        for name in self.errors:  # the message is read with the field (template's errorlist)
            self.fields[name].widget.attrs["aria-describedby"] = f"id_{name}_errors"
        return cleaned

    def filters(self) -> HistoryFilters:
        """The filters that could be read (is_valid() must have run)."""
        values = self.cleaned_data
        return HistoryFilters(
            target_type=values.get("type") or "",
            target_id=values.get("object"),
            q=values.get("q") or "",
            actor=values.get("actor") or "",
            action=values.get("action") or "",
            institution=values.get("institution") or "",
            since=values.get("since"),
            until=values.get("until"),
        )
