"""manage.py rotate_encryption_keys [--dry-run] [--batch-size N]: re-encrypt every stored
private key (certificates, Apple Pay requests, ACME accounts) and every upload draft kept in a
database session under the first key of CERTMGR_ENCRYPTION_KEYS.

Put the new key first (`CERTMGR_ENCRYPTION_KEYS=new,old`) in every process, run this, then
remove the old key. Safe to interrupt and run again; a second run changes nothing. Exits
non-zero, changing nothing, when a stored value is under none of the configured keys, naming
the table, column and row (never the value). Prints counts only, never key material.
"""

from django.core.management.base import BaseCommand, CommandError

from core.rotation import (
    ROTATION_BATCH_SIZE,
    EncryptionKeysMissing,
    KeyRotationReport,
    encryption_keys_rotate,
)

# An operator needs the first rows to find the key; thousands of lines help nobody.
UNDECRYPTABLE_LISTED = 50


class Command(BaseCommand):
    help = "Re-encrypt every stored private key under the first key of CERTMGR_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="check and count only, change nothing"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=ROTATION_BATCH_SIZE,
            help=f"rows per transaction (default {ROTATION_BATCH_SIZE})",
        )

    def handle(self, *args, dry_run: bool = False, batch_size: int = ROTATION_BATCH_SIZE, **opts):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            report = encryption_keys_rotate(dry_run=dry_run, batch_size=batch_size)
        except EncryptionKeysMissing as refused:
            for label, pk in refused.report.undecryptable[:UNDECRYPTABLE_LISTED]:
                self.stderr.write(f"{label} row {pk}: no configured key decrypts it")
            more = len(refused.report.undecryptable) - UNDECRYPTABLE_LISTED
            if more > 0:
                self.stderr.write(f"... and {more} more")
            raise CommandError(
                f"{refused} (listed above). Add the key they were encrypted with to "
                "CERTMGR_ENCRYPTION_KEYS (after the first one) and run again; do not remove "
                "any old key until this command succeeds."
            ) from None
        self._report_print(report, dry_run=dry_run)

    def _report_print(self, report: KeyRotationReport, *, dry_run: bool) -> None:
        verb = "to re-encrypt" if dry_run else "re-encrypted"
        for column in report.columns:
            self.stdout.write(
                f"{column.label}: {column.values} value(s), {column.rotated} {verb}, "
                f"{column.current} already under the first key"
            )
        if report.sessions_checked:
            dropped = "to drop" if dry_run else "dropped"
            self.stdout.write(
                f"django_session upload drafts: {report.session_drafts_rotated} {verb}, "
                f"{report.session_drafts_dropped} {dropped} (no configured key decrypts them)"
            )
        total = sum(column.rotated for column in report.columns)
        if dry_run:
            self.stdout.write(f"Dry run: {total} value(s) would be re-encrypted; nothing changed.")
        else:
            self.stdout.write(
                f"Done: {total} value(s) re-encrypted. Every stored value is under the first key; "
                "the other keys can be removed from CERTMGR_ENCRYPTION_KEYS."
            )
