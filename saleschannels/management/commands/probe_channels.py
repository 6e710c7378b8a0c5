"""manage.py probe_channels [--hostname H]: check what the TLS edge really serves.

Probes every sales channel that uses SSL (or only H), records the result on each channel and
prints one line per channel ("<hostname> <status>", plus the reason when the probe failed) and
a summary of the counts per status. Channels with Apple Pay enabled also get their Apple Pay
file fetched, one line each ("<hostname> apple-pay ok", or "failed: <why>"). The reasons are
the plain words the channel pages show; the details (addresses, TLS errors) are in the log.
"""

from django.core.management.base import BaseCommand, CommandError

from saleschannels.models import ProbeFailure, SalesChannel
from saleschannels.probe import channels_probe


class Command(BaseCommand):
    help = "TLS-handshake with every SSL sales channel and record which certificate is served."

    def add_arguments(self, parser):
        parser.add_argument("--hostname", help="probe only the channel on this hostname")

    def handle(self, *args, hostname: str | None = None, **options):
        queryset = SalesChannel.objects.all()
        if hostname:
            queryset = queryset.filter(hostname=hostname.strip().lower().rstrip("."))
            if not queryset.exists():
                raise CommandError(f"No sales channel has the hostname {hostname}.")
        counts = channels_probe(queryset)
        probed = queryset.exclude(ssl_mode=SalesChannel.SslMode.NONE).order_by("hostname")
        for name, status, failure in probed.values_list(
            "hostname", "probe_status", "probe_failure"
        ):
            self.stdout.write(f"{name} {status}" + _reason(failure))
        apple = queryset.filter(apple_pay_enabled=True).order_by("hostname")
        for channel in apple:
            self.stdout.write(
                f"{channel.hostname} apple-pay {'ok' if channel.apple_probe_ok else 'failed'}"
                + (f": {channel.apple_probe_explanation}" if channel.apple_probe_failure else "")
            )
        if not sum(counts.values()):
            self.stdout.write("No sales channel uses SSL: nothing to probe.")
            return
        self.stdout.write(", ".join(f"{count} {status}" for status, count in counts.items()))


def _reason(failure: str) -> str:
    return f": {ProbeFailure(failure).label}." if failure else ""
