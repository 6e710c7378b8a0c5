"""The form of a new API token (README, "API")."""

import uuid
from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.conf import settings

from .models import ApiToken


class ApiTokenForm(forms.Form):
    # A new id with every blank form: sending the same form twice (a reload of the page that
    # answered it) is recognised and creates nothing more (services.api_token_create).
    form_id = forms.UUIDField(widget=forms.HiddenInput, required=False)
    name = forms.CharField(
        max_length=100, help_text="Which system uses it, e.g. “ticketing onboarding”."
    )
    role = forms.ChoiceField(
        choices=ApiToken.Role.choices,
        widget=forms.RadioSelect,
        initial=ApiToken.Role.VIEWER,
        help_text="Viewer: reads only. Manager: also creates, changes and deletes.",
    )
    expires_on = forms.DateField(
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The token stops working at the start of this day (UTC).",
    )

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["expires_on"].initial = today + timedelta(days=90)
        self.fields["form_id"].initial = uuid.uuid4()

    def clean_expires_on(self) -> datetime:
        day = self.cleaned_data["expires_on"]
        longest = settings.CERTMGR_API_TOKEN_DAYS_MAX
        if day <= self.today:
            raise forms.ValidationError("Choose a day after today.")
        if day > self.today + timedelta(days=longest):
            raise forms.ValidationError(
                f"A token lives at most {longest} days: choose an earlier day."
            )
        return datetime.combine(day, time.min, tzinfo=UTC)
