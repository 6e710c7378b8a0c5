"""The certificates list's filters, read from the query string: the list page and its CSV
export read them here, so the export holds exactly the rows the page lists.

A filter that cannot be read is not applied and the list says so on that filter, in plain
words, rather than silently ignoring it (or failing).
"""

from datetime import date

from django import forms

from .selectors import CertificateFilters

# What a person is shown of what they typed: a query string can be long.
SHOWN_CHARS = 40


class ExpiryDatesForm(forms.Form):
    """The two day filters ("Expires from", "Expires before"), ISO dates (YYYY-MM-DD) as the
    browser's date input sends them; an empty one is no filter."""

    expires_after = forms.CharField(required=False, strip=True)
    expires_before = forms.CharField(required=False, strip=True)

    def clean_expires_after(self) -> date | None:
        return filter_day(self.cleaned_data["expires_after"])

    def clean_expires_before(self) -> date | None:
        return filter_day(self.cleaned_data["expires_before"])


def filter_day(value: str) -> date | None:
    """A day filter's date (None when empty), or a ValidationError saying in plain words why
    it is not applied (the history page's date filters read theirs here too)."""
    if not value:
        return None
    shown = value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise forms.ValidationError(
            f"“{shown}” is not a date: write it as year-month-day, e.g. 2030-06-30. "
            "This filter is not applied."
        ) from None
    # Midnight on the first or last day of the calendar has no UTC time in every time zone.
    if not date.min < day < date.max:
        raise forms.ValidationError(f"{day:%Y-%m-%d} is out of range. This filter is not applied.")
    return day


def certificate_filters(query) -> tuple[CertificateFilters, ExpiryDatesForm]:
    """The filters of a query string (the request's GET parameters), and the form holding the
    errors of the date filters that were not applied."""
    dates = ExpiryDatesForm(query)
    dates.is_valid()  # a field in error is simply absent from cleaned_data
    filters = CertificateFilters(
        status=query.get("status", ""),
        kind=query.get("kind", ""),
        institution=query.get("institution", ""),
        q=query.get("q", "").strip(),
        sort=query.get("sort", "expires_at"),
        expires_after=dates.cleaned_data.get("expires_after"),
        expires_before=dates.cleaned_data.get("expires_before"),
    )
    return filters, dates
