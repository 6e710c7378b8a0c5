"""manage.py deploy_edge [--verify]: bring the TLS edge directory in line with the database.

Prints one line per change ("written <hostname>", "removed <hostname>") and a summary
("N written, M removed, K unchanged"), or "Edge directory is up to date (K channels)".
Exits with an error (after deploying everything else) when some keys cannot be decrypted.
"""

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
            self._changes_report(error.changes, failed=len(error.failures))
            for hostname, reason in sorted(error.failures.items()):
                self.stderr.write(f"failed {hostname}: {reason}")
            raise CommandError(str(error)) from None
        self._changes_report(changes)

    def _changes_report(self, changes: list[EdgeChange], *, failed: int = 0) -> None:
        # Counted after the sync: every deployable channel not written was already in place.
        deployable = edge_deployable_channels().count()
        written = sum(1 for change in changes if change.action == WRITTEN)
        removed = sum(1 for change in changes if change.action == REMOVED)
        if not changes and not failed:
            plural = "" if deployable == 1 else "s"
            self.stdout.write(f"Edge directory is up to date ({deployable} channel{plural})")
            return
        for change in changes:
            self.stdout.write(f"{change.action} {change.hostname}")
        unchanged = max(deployable - written - failed, 0)
        self.stdout.write(f"{written} written, {removed} removed, {unchanged} unchanged")
