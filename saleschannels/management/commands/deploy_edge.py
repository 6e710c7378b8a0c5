"""manage.py deploy_edge [--verify]: bring the TLS edge directory in line with the database.

Prints one line per change ("written <hostname>", "removed <hostname>") and a summary
("N written, M removed, K unchanged"), or "Edge directory is up to date (K channels)".
A hostname that fails (a key that cannot be decrypted, a stored hostname too long for a file
name, a file that cannot be written) never stops the others: every other channel is deployed
and the manifest saved first; then each failure is printed ("failed <hostname>: <reason>", on
stderr, and logged by edge.py), the summary counts them (", F failed") and the command exits
with an error.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from saleschannels.edge import (
    REMOVED,
    WRITTEN,
    EdgeChange,
    EdgeSyncError,
    edge_deployable_channels,
    edge_sync,
)


class Command(BaseCommand):
    help = "Write the active certificates of all sales channels to CERTMGR_EDGE_DIR."

    def add_arguments(self, parser):
        parser.add_argument(
            "--verify",
            action="store_true",
            help="also compare every file's contents with the database and repair differences "
            "(decrypts every key: slower)",
        )

    def handle(self, *args, verify: bool = False, **options):
        try:
            changes = edge_sync(verify=verify)
        except EdgeSyncError as error:
            self._changes_report(error.changes)
            for hostname, reason in sorted(error.failures.items()):
                self.stderr.write(f"failed {hostname}: {reason}")
            self.stdout.write(
                f"{_counts(error.changes)}, {error.unchanged} unchanged, "
                f"{len(error.failures)} failed"
            )
            raise CommandError(str(error)) from None
        except OSError as error:  # the folder itself: nothing could be done for any channel
            raise CommandError(
                f"The edge folder {settings.CERTMGR_EDGE_DIR} cannot be used: "
                f"{error.strerror or error}"
            ) from None
        self._changes_report(changes)
        self._summary_report(changes)

    def _changes_report(self, changes: list[EdgeChange]) -> None:
        for change in changes:
            self.stdout.write(f"{change.action} {change.hostname}")

    def _summary_report(self, changes: list[EdgeChange]) -> None:
        # Counted after the sync: every deployable channel not written was already in place.
        deployable = edge_deployable_channels().count()
        if not changes:
            plural = "" if deployable == 1 else "s"
            self.stdout.write(f"Edge directory is up to date ({deployable} channel{plural})")
            return
        written = sum(1 for change in changes if change.action == WRITTEN)
        unchanged = max(deployable - written, 0)
        self.stdout.write(f"{_counts(changes)}, {unchanged} unchanged")


def _counts(changes: list[EdgeChange]) -> str:
    written = sum(1 for change in changes if change.action == WRITTEN)
    removed = sum(1 for change in changes if change.action == REMOVED)
    return f"{written} written, {removed} removed"
