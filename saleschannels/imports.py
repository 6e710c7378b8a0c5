"""Bulk onboarding: sales channels from a CSV file (README, "Importing sales channels").

Three steps, each usable alone, so that a page can show a preview and a command a dry run:

* `import_parse(data)`: the file's rows. The file is CSV (RFC 4180,
  https://www.rfc-editor.org/rfc/rfc4180) in UTF-8, with or without a byte-order mark, at
  most MAX_BYTES and MAX_ROWS rows under the header `institution,name,hostname,ssl_mode`. A
  file that is not that as a whole raises ImportFileError.
* `import_check(rows, institutions=...)`: each row checked with the channel form's own rules
  (forms.ChannelForm's fields and forms.hostname_allowed), plus: the institution is one of
  `institutions` (those the acting user may write in; any other slug reads as unknown), the
  hostname is on one row only and held by no channel yet, and the SSL mode is `none` or
  `managed`. A constant number of queries whatever the number of rows.
* `import_create(plan, actor=...)`: all or nothing, in one transaction, each channel through
  services.channel_create (its audit row) in its SSL mode. A managed one starts unverified:
  nothing is ordered for it until its institution proves it controls the hostname (README,
  "Onboarding a hostname"), so creating it managed is all that choosing managed would do.

Every refusal is a RowError naming the row (as a spreadsheet numbers it: the header is row 1)
and the column, in plain words.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from core.confirmation import impact_token
from institutions.models import Institution

from . import services
from .forms import ChannelForm, hostname_allowed
from .hostnames import HostnameError
from .models import SalesChannel

COLUMNS = ("institution", "name", "hostname", "ssl_mode")
HEADER = ",".join(COLUMNS)
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 10_000
MODES = (SalesChannel.SslMode.NONE.value, SalesChannel.SslMode.MANAGED.value)
# Values per `IN (...)` query: below every database's bound on parameters (SQLite's 999).
_CHUNK = 500

UNVERIFIED_NOTE = (
    "New sales channels are unverified: no certificate is ordered for a managed one until its "
    "institution proves it controls the hostname (Proof of ownership on the channel's page: a "
    "TXT record or the HTTP token)."
)


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (size, encoding, header, number of rows)."""


class ImportRefused(Exception):
    """Rows were refused: nothing was imported. `plan` carries each row's errors."""

    def __init__(self, plan: "ImportPlan"):
        self.plan = plan
        super().__init__(f"{len(plan.errors)} errors: nothing was imported")


@dataclass(frozen=True)
class ImportRow:
    """One row of the file as written (cells stripped of surrounding spaces)."""

    number: int  # as a spreadsheet numbers it: the header is row 1
    institution: str
    name: str
    hostname: str
    ssl_mode: str
    width: int = len(COLUMNS)  # how many cells the row had

    def as_list(self) -> list:
        """JSON-friendly, e.g. to keep a previewed file in the session (import_rows_load)."""
        return [self.number, self.width, self.institution, self.name, self.hostname, self.ssl_mode]


def import_rows_load(items: Iterable[list]) -> list[ImportRow]:
    """Rows back from ImportRow.as_list()."""
    return [
        ImportRow(
            number=number,
            width=width,
            institution=institution,
            name=name,
            hostname=hostname,
            ssl_mode=ssl_mode,
        )
        for number, width, institution, name, hostname, ssl_mode in items
    ]


def import_rows_digest(rows: list[ImportRow]) -> str:
    """A digest of the rows, so that a confirmation can show it confirms the rows previewed
    (core/confirmation.py)."""
    return impact_token(*(value for row in rows for value in row.as_list()))


@dataclass(frozen=True)
class RowError:
    number: int
    column: str | None  # None: the row as a whole
    message: str

    def __str__(self) -> str:
        where = f"Row {self.number}" if self.column is None else f"Row {self.number}, {self.column}"
        return f"{where}: {self.message}"


@dataclass
class PlannedRow:
    """A row with what the check found: the channel it makes, or its errors."""

    row: ImportRow
    institution: Institution | None = None
    hostname: str = ""  # stored form (lower-case IDNA)
    name: str = ""
    ssl_mode: str = ""
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def refuse(self, column: str | None, message: str) -> None:
        self.errors.append(RowError(self.row.number, column, message))
        # In the order of the columns, whichever check found it first.
        self.errors.sort(key=lambda error: COLUMNS.index(error.column) if error.column else -1)

    @property
    def outcome(self) -> str:
        """What importing the row does, in words (only for a row without errors)."""
        hostname = self.hostname
        if hostname != self.row.hostname:  # Bücher.example -> xn--bcher-kva.example
            hostname = f"{self.row.hostname} (stored as {self.hostname})"
        if self.ssl_mode == SalesChannel.SslMode.MANAGED:
            return (
                f"Creates {hostname}, managed: a certificate is ordered once "
                f"{self.institution.name} proves it controls the name."
            )
        return f"Creates {hostname}, without SSL."


@dataclass
class ImportPlan:
    rows: list[PlannedRow]

    @property
    def errors(self) -> list[RowError]:
        return [error for row in self.rows for error in row.errors]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.errors

    @property
    def refused_count(self) -> int:
        """How many rows have errors."""
        return sum(not row.ok for row in self.rows)

    @property
    def managed_count(self) -> int:
        return sum(row.ssl_mode == SalesChannel.SslMode.MANAGED for row in self.rows)

    @property
    def none_count(self) -> int:
        return sum(row.ssl_mode == SalesChannel.SslMode.NONE for row in self.rows)

    @property
    def digest(self) -> str:
        return import_rows_digest([planned.row for planned in self.rows])


@dataclass
class ImportResult:
    created: list[SalesChannel]
    # Channels created whose edge files could not be brought in line (services.DeploymentError).
    warnings: list[str] = field(default_factory=list)


# --- the file ------------------------------------------------------------------------------


def import_parse(data: bytes) -> list[ImportRow]:
    """The rows under the header, blank rows left out; ImportFileError for the whole file."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(
            f"The file has {len(data):,} bytes; at most {MAX_BYTES // (1024 * 1024)} MiB are "
            "imported at once: split it into several files."
        )
    if b"\x00" in data:
        raise ImportFileError(
            "The file holds NUL characters, so it is not CSV text: save it as CSV (UTF-8)."
        )
    try:
        text = data.decode("utf-8-sig")  # the byte-order mark, if any, is not a character
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ImportFileError(
            f"The file is not UTF-8 text (line {line} holds "
            "bytes that are not UTF-8): save it as CSV UTF-8."
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[ImportRow] = []
    try:
        header = _cells(next(reader, []))
        _header_check(header)
        for number, record in enumerate(reader, start=2):
            cells = _cells(record)
            if not any(cells):
                continue  # a blank line
            if len(rows) == MAX_ROWS:
                raise ImportFileError(
                    f"The file has more than {MAX_ROWS:,} rows: split it into several files."
                )
            padded = [*cells, *[""] * len(COLUMNS)][: len(COLUMNS)]
            rows.append(ImportRow(number, *padded, width=len(cells)))
    except csv.Error as error:
        raise ImportFileError(
            f"Line {reader.line_num} of the file is not readable as CSV ({error}): check its "
            "quotes."
        ) from None
    if not rows:
        raise ImportFileError("The file has no rows under its header: nothing to import.")
    return rows


def _cells(record: list[str]) -> list[str]:
    """The cells stripped, without the empty ones a spreadsheet leaves at the end of a row."""
    cells = [cell.strip() for cell in record]
    while len(cells) > len(COLUMNS) and not cells[-1]:
        cells.pop()
    return cells


def _header_check(header: list[str]) -> None:
    if [cell.lower() for cell in header] == list(COLUMNS):
        return
    if not any(header):
        raise ImportFileError(f"The file is empty: its first row must be the header {HEADER}.")
    if len(header) == 1 and ";" in header[0]:
        raise ImportFileError(
            f"The columns are separated by semicolons: save the file with commas, under the "
            f"header {HEADER}."
        )
    raise ImportFileError(
        f"The first row must be the header {HEADER} (these four columns, in this order)."
    )


# --- the check -----------------------------------------------------------------------------


def import_check(rows: list[ImportRow], *, institutions: QuerySet[Institution]) -> ImportPlan:
    """Check every row; `institutions` are those the acting user may create channels in
    (Institution.objects.managed_by(user); all of them for the command)."""
    plan = ImportPlan([PlannedRow(row) for row in rows])
    for planned in plan.rows:
        _row_check(planned)
    _institutions_check(plan, institutions)
    _hostnames_check(plan)
    return plan


def _row_check(planned: PlannedRow) -> None:
    """The checks of one row that need no database."""
    row = planned.row
    if row.width != len(COLUMNS):
        planned.refuse(
            None,
            f"{row.width} column{'s' if row.width != 1 else ''}; every row has {len(COLUMNS)}: "
            f"{', '.join(COLUMNS)}.",
        )
        return
    if not row.institution:
        planned.refuse("institution", "empty: give the slug of the sales channel's institution.")
    if not row.name:
        planned.refuse("name", "empty: every sales channel needs a name.")
    else:
        planned.name = _form_field_clean(planned, "name", row.name) or ""
    if not row.hostname:
        planned.refuse("hostname", "empty: give the shop's hostname, e.g. tickets.example.com.")
    elif _form_field_clean(planned, "hostname", row.hostname) is not None:
        try:
            planned.hostname = hostname_allowed(row.hostname)
        except HostnameError as error:
            planned.refuse("hostname", str(error))
    mode = row.ssl_mode.lower()
    if mode in MODES:
        planned.ssl_mode = mode
    elif mode == SalesChannel.SslMode.UPLOADED:
        planned.refuse(
            "ssl_mode",
            "“uploaded” needs a certificate, which a file cannot bind: import the row as none, "
            "then choose the certificate on the channel's SSL Management page.",
        )
    elif not mode:
        planned.refuse("ssl_mode", "empty: write none or managed.")
    else:
        planned.refuse("ssl_mode", f"“{row.ssl_mode}” is not an SSL mode: write none or managed.")


def _form_field_clean(planned: PlannedRow, column: str, value: str) -> str | None:
    """The channel form's own field rules (its lengths); None after refusing the cell."""
    try:
        return ChannelForm.base_fields[column].clean(value)
    except ValidationError as error:
        planned.refuse(column, " ".join(error.messages))
        return None


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _institutions_check(plan: ImportPlan, institutions: QuerySet[Institution]) -> None:
    slugs = sorted({planned.row.institution for planned in plan.rows if planned.row.institution})
    found: dict[str, Institution] = {}
    for chunk in _chunks(slugs):
        found.update((i.slug, i) for i in institutions.filter(slug__in=chunk))
    for planned in plan.rows:
        slug = planned.row.institution
        if not slug or planned.row.width != len(COLUMNS):
            continue
        planned.institution = found.get(slug)
        if planned.institution is None:
            # Another institution's slug reads exactly like one that does not exist.
            planned.refuse("institution", f"there is no institution “{slug}” that you manage.")


def _hostnames_check(plan: ImportPlan) -> None:
    """A hostname on one row only, and held by no channel yet (the form's rule, in bulk)."""
    first_row: dict[str, int] = {}
    for planned in plan.rows:
        if planned.hostname:
            first_row.setdefault(planned.hostname, planned.row.number)
    taken: set[str] = set()
    for chunk in _chunks(list(first_row)):
        taken.update(
            SalesChannel.objects.filter(hostname__in=chunk).values_list("hostname", flat=True)
        )
    for planned in plan.rows:
        if not planned.hostname:
            continue
        if planned.hostname in taken:
            planned.refuse("hostname", services.HOSTNAME_TAKEN)
        elif first_row[planned.hostname] != planned.row.number:
            planned.refuse(
                "hostname",
                f"{planned.hostname} is on row {first_row[planned.hostname]} already: a hostname "
                "belongs to one sales channel.",
            )


# --- the import ----------------------------------------------------------------------------


def import_create(plan: ImportPlan, *, actor) -> ImportResult:
    """Create every channel of a plan without errors, all or nothing, in one transaction.

    Each goes through services.channel_create, as the channel form's does (its audit row),
    created in its SSL mode: a managed one is unverified, so nothing is ordered for it yet.
    ImportRefused, with nothing created, when the plan has errors or when another channel took
    one of the hostnames since the check (that row then says so).
    """
    if not plan.ok:
        raise ImportRefused(plan)
    result = ImportResult(created=[])
    current: PlannedRow | None = None
    try:
        with transaction.atomic():
            for current in plan.rows:
                channel = services.channel_create(
                    institution=current.institution,
                    name=current.name,
                    hostname=current.hostname,
                    actor=actor,
                    ssl_mode=current.ssl_mode,
                )
                result.created.append(channel)
    except services.HostnameTaken as taken:
        current.refuse("hostname", str(taken))
        raise ImportRefused(plan) from None
    return result
