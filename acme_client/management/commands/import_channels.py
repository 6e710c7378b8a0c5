"""manage.py import_channels FILE.csv [--dry-run]: create sales channels from a CSV file
(README, "Importing sales channels"; saleschannels/imports.py checks, acme_client/imports.py
creates).

Run by the platform's staff on the server: any institution's slug may appear, and the audit
trail records the channels as created by the platform. Every refused row is printed
("Row 3, hostname: ...", on stderr) and nothing is imported: the command exits 1. Otherwise
it prints one line per channel created (or, with --dry-run, that it would create) and a
summary; --dry-run writes nothing.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from institutions.models import Institution
from saleschannels.imports import (
    MAX_BYTES,
    UNVERIFIED_NOTE,
    ImportFileError,
    ImportPlan,
    ImportRefused,
)

from ...imports import channels_import, channels_import_plan


class Command(BaseCommand):
    help = "Create sales channels from a CSV file: institution,name,hostname,ssl_mode."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the CSV file (UTF-8, header row first)")
        parser.add_argument(
            "--dry-run", action="store_true", help="check every row and import nothing"
        )

    def handle(self, *args, file: Path, dry_run: bool = False, **options):
        try:
            with file.open("rb") as stream:
                data = stream.read(MAX_BYTES + 1)  # one byte over is enough to refuse it
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror or error}") from None
        try:
            plan = channels_import_plan(data, institutions=Institution.objects.all())
        except ImportFileError as error:
            raise CommandError(f"{file}: {error}") from None
        if not plan.ok:
            self._refused(plan)
        if dry_run:
            for planned in plan.rows:
                self.stdout.write(f"would create {self._line(planned)}")
            self.stdout.write(
                f"{self._summary(plan)} checked: nothing imported (--dry-run). {UNVERIFIED_NOTE}"
            )
            return
        try:
            result = channels_import(plan, actor=None)
        except ImportRefused as refused:  # a hostname taken since the check
            self._refused(refused.plan)
        for planned in plan.rows:
            self.stdout.write(f"created {self._line(planned)}")
        for warning in result.warnings:
            self.stderr.write(warning)
        self.stdout.write(f"{self._summary(plan)} created. {UNVERIFIED_NOTE}")

    def _refused(self, plan: ImportPlan):
        errors = plan.errors
        for error in errors:
            self.stderr.write(str(error))
        rows = len({error.number for error in errors})
        raise CommandError(
            f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {rows} "
            f"row{'s' if rows != 1 else ''}: nothing was imported."
        )

    @staticmethod
    def _line(planned) -> str:
        mode = "managed" if planned.ssl_mode == "managed" else "without SSL"
        return f"{planned.hostname} ({planned.name}, {planned.institution.slug}, {mode})"

    @staticmethod
    def _summary(plan: ImportPlan) -> str:
        count, managed = len(plan.rows), plan.managed_count
        return (
            f"{count} sales channel{'s' if count != 1 else ''} ({managed} managed, "
            f"{count - managed} without SSL)"
        )
