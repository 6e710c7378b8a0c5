"""`GET /metrics`: Prometheus metrics of every certificate and sales channel.

The endpoint is off (404) unless CERTMGR_METRICS_TOKEN is set, and then asks for that token as
`Authorization: Bearer <token>` (401 otherwise). It is not scoped to a user: it reports the
whole platform, which is why it needs the token.

Each scrape builds a fresh registry around CertmgrCollector, which reads the database in a
fixed number of queries (six) whatever the number of certificates and channels. The worker
counters are derived from rows the workers write (ACME orders, notifications), so any web
process reports what every worker did, and they survive restarts; if such rows are deleted a
counter goes down, which Prometheus treats as a counter reset.
"""

import hmac
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from acme_client.models import AcmeOrder
from certificates.models import Certificate
from saleschannels.models import ChannelStatus, ProbeStatus, SalesChannel

from .dashboard import certificate_status_counts
from .models import Notification

# ACME order status -> `result` label of certmgr_renewals_total (pending orders not counted).
RENEWAL_RESULTS = {AcmeOrder.Status.VALID: "issued", AcmeOrder.Status.FAILED: "failed"}


class CertmgrCollector:
    """A prometheus_client collector reading certmgr's state at scrape time."""

    def __init__(self, *, now: datetime):
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield self.certificate_expiry()
        yield self.certificates_by_status()
        yield from self.channels()
        yield self.channels_by_status()
        yield self.renewals()
        yield self.notifications()

    def certificate_expiry(self) -> GaugeMetricFamily:
        # `id` keeps series apart when two certificates share everything else, as a managed
        # certificate and the renewal that replaces it do: Prometheus refuses duplicates.
        family = GaugeMetricFamily(
            "certmgr_certificate_expiry_timestamp_seconds",
            "When the certificate expires (Unix time).",
            labels=["institution", "kind", "name", "hostnames", "id"],
        )
        rows = Certificate.objects.order_by("pk").values_list(
            "pk", "institution__name", "kind", "name", "domains", "expires_at"
        )
        for pk, institution, kind, name, domains, expires_at in rows:
            family.add_metric(
                [institution, kind, name, ",".join(domains or []), str(pk)],
                expires_at.timestamp(),
            )
        return family

    def certificates_by_status(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "certmgr_certificates", "Certificates by current status.", labels=["status"]
        )
        counts = certificate_status_counts(Certificate.objects.all(), now=self.now)
        for status, count in counts.items():
            family.add_metric([status], count)
        return family

    def channels(self) -> Iterator[GaugeMetricFamily]:
        labels = ["institution", "name", "hostname", "ssl_mode"]
        failures = GaugeMetricFamily(
            "certmgr_channel_renewal_failures",
            "Managed renewals failed in a row (0 after a success).",
            labels=labels,
        )
        probe_ok = GaugeMetricFamily(
            "certmgr_channel_probe_ok",
            "1 when the live probe saw the channel's active certificate served, else 0 "
            "(wrong, expired or no certificate, or not checked yet). Channels without SSL "
            "are left out.",
            labels=labels,
        )
        rows = SalesChannel.objects.order_by("pk").values_list(
            "institution__name",
            "name",
            "hostname",
            "ssl_mode",
            "renewal_failures",
            "probe_status",
        )
        for institution, name, hostname, ssl_mode, renewal_failures, probe_status in rows:
            values = [institution, name, hostname, ssl_mode]
            failures.add_metric(values, renewal_failures)
            if ssl_mode != SalesChannel.SslMode.NONE:
                probe_ok.add_metric(values, 1 if probe_status == ProbeStatus.OK else 0)
        yield failures
        yield probe_ok

    def channels_by_status(self) -> GaugeMetricFamily:
        """Channels per status (saleschannels.models.ChannelStatus, the one status every page
        shows), every status present, zeros included: one GROUP BY."""
        family = GaugeMetricFamily(
            "certmgr_channel_status",
            "Sales channels by status (the one status shown on every page).",
            labels=["status"],
        )
        counts = dict(
            SalesChannel.objects.order_by().values_list("status").annotate(count=Count("pk"))
        )
        for status in ChannelStatus.values:
            family.add_metric([status], counts.get(status, 0))
        return family

    def renewals(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "certmgr_renewals",
            "ACME orders finished by the workers, by result.",
            labels=["result"],
        )
        counts = dict(
            AcmeOrder.objects.filter(status__in=RENEWAL_RESULTS)
            .order_by()
            .values_list("status")
            .annotate(count=Count("pk"))
        )
        for status, result in RENEWAL_RESULTS.items():
            family.add_metric([result], counts.get(status, 0))
        return family

    def notifications(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "certmgr_notifications",
            "Findings notified to institutions (expiry thresholds, renewal, probe), by kind.",
            labels=["kind"],
        )
        counts = dict(
            Notification.objects.order_by().values_list("kind").annotate(count=Count("pk"))
        )
        for kind in Notification.Kind.values:
            family.add_metric([kind], counts.get(kind, 0))
        return family


def _bearer_token_matches(request, expected: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


@require_GET
def metrics(request):
    """The Prometheus text exposition; 404 while no token is configured, 401 without it."""
    expected = settings.CERTMGR_METRICS_TOKEN  # read per request: settings can change
    if not expected:
        # As if the URL did not exist; plain text, like the host routing's 404.
        return HttpResponseNotFound("Not found.\n", content_type="text/plain; charset=utf-8")
    if not _bearer_token_matches(request, expected):
        response = HttpResponse(
            "A bearer token is required.\n", status=401, content_type="text/plain; charset=utf-8"
        )
        response["WWW-Authenticate"] = 'Bearer realm="certmgr metrics"'
        return response
    # A registry per scrape, not the process-wide one: the collector reads the database, and
    # nothing else should end up in (or be kept alive by) a global registry.
    registry = CollectorRegistry()
    registry.register(CertmgrCollector(now=timezone.now()))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
