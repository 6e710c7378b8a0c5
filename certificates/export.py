"""The certificates list as CSV (README, "Using it"): the rows the list page shows with the
same filters and the same scoping (the user's institutions), streamed, never key material.

CSV injection: a spreadsheet runs a cell starting with = + - @ (or a tab or carriage return)
as a formula, and names, hostnames and issuers are typed by people or read from uploaded
files, so such a text cell is prefixed with a quote ('), as OWASP advises:
https://owasp.org/www-community/attacks/CSV_Injection
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from . import expiry, selectors
from .models import Certificate, CertificateStatus

HEADER = [
    "Name",
    "Type",
    "Institution",
    "Common name",
    "Hostnames",
    "Issuer",
    "Not before (UTC)",
    "Expires (UTC)",
    "Days left",
    "Status",
    "Used by",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows fetched per query while streaming (with their institution and channels prefetched).
CHUNK_SIZE = 500


class _Echo:
    """A file-like object that hands back what csv.writer writes, for streaming."""

    def write(self, value: str) -> str:
        return value


def cell_safe(value) -> object:
    """A text cell that a spreadsheet would run as a formula, quoted; numbers as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _instant(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def certificate_row(certificate: Certificate, now: datetime) -> list:
    channels = selectors.certificate_channels(certificate)
    row = [
        certificate.name,
        certificate.get_kind_display(),
        certificate.institution.name,
        certificate.common_name,
        " ".join(certificate.domains or []) or certificate.merchant_identifier,
        certificate.issuer,
        _instant(certificate.not_before),
        _instant(certificate.expires_at),
        expiry.days_left(certificate.expires_at, now),
        CertificateStatus(certificate.status).label,
        " ".join(channel.hostname for channel in channels),
    ]
    return [cell_safe(value) for value in row]


def certificates_csv(certificates: Iterable[Certificate], now: datetime) -> Iterator[str]:
    """The header, then one line per certificate."""
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    for certificate in certificates:
        yield writer.writerow(certificate_row(certificate, now))


def certificate_list_csv(*, user, filters: selectors.CertificateFilters, now: datetime):
    """The lines of the export of the list as `user` sees it with `filters`."""
    queryset = selectors.certificate_list(user=user, filters=filters, now=now)
    return certificates_csv(queryset.iterator(chunk_size=CHUNK_SIZE), now)
