"""manage.py check_expiry [--staff-summary] [--rebuild-thresholds]: one expiry monitoring run,
as Celery beat does.

Records the new findings (certificates crossing a threshold, channels whose renewal keeps
failing or whose served certificate is wrong), sends each institution its digest and prints
what was sent; with --staff-summary, also sends the staff's daily summary. After a change of
CERTMGR_NOTIFY_DAYS or CERTMGR_SHORT_LIVED_DAYS, --rebuild-thresholds first stores the
thresholds ahead of every certificate anew (they are stored with each certificate).
"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from certificates.threshold_store import thresholds_rebuild
from monitoring.delivery import expiry_check
from monitoring.staff_summary import staff_summary_send


class Command(BaseCommand):
    help = "Find expiring certificates and failing channels; e-mail each institution a digest."

    def add_arguments(self, parser):
        parser.add_argument(
            "--staff-summary", action="store_true", help="also send the staff's daily summary"
        )
        parser.add_argument(
            "--rebuild-thresholds",
            action="store_true",
            help="first store every certificate's thresholds ahead under the current settings",
        )

    def handle(self, *args, staff_summary: bool = False, rebuild_thresholds=False, **options):
        if rebuild_thresholds:
            stored = thresholds_rebuild(now=timezone.now())
            self.stdout.write(f"{stored} threshold(s) ahead stored under the current settings.")
        report = expiry_check()
        self.stdout.write(f"{report.recorded} new finding(s) recorded.")
        for digest in report.digests:
            if digest.emailed:
                sent = "e-mailed to " + ", ".join(digest.recipients)
            elif digest.email_error:
                sent = f"e-mail FAILED ({digest.email_error}), retried next run"
            else:
                sent = "not e-mailed (no address)"
            webhook = f"; webhook {digest.webhook}" if digest.webhook else ""
            self.stdout.write(
                f"{digest.institution.name}: {len(digest.findings)} finding(s) {sent}{webhook}"
            )
            for finding in digest.findings:
                self.stdout.write(f"  - {finding.title}: {finding.name} {finding.url}")
        if not report.digests:
            self.stdout.write("Nothing to send.")
        if staff_summary:
            count = staff_summary_send()
            self.stdout.write(f"Staff summary sent to {count} address(es).")
