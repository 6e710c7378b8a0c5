"""The daily summary for platform staff: the state across institutions (README, "Expiry
monitoring")."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db.models import (
    Count,
    Q,
)
from django.template.loader import render_to_string
from django.utils import timezone

from certificates.models import (
    Certificate,
    CertificateStatus,
    status_q,
)
from institutions.models import Institution
from saleschannels.models import (
    PROBE_PROBLEMS,
    RENEWAL_FAILURES_ALERT,
    SalesChannel,
)
from saleschannels.status import probe_finding

from .digests import absolute_url, plural
from .models import Notification

logger = logging.getLogger(__name__)


def staff_summary_send(*, now: datetime | None = None) -> int:
    """E-mail every active staff user with an address the state across institutions: current
    certificates (not replaced) per status and institution, and the sales channels needing
    action. Returns the number of recipients."""
    now = now or timezone.now()
    recipients = sorted(
        set(
            get_user_model()
            .objects.filter(is_staff=True, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )
    if not recipients:
        return 0
    context = staff_summary_context(now=now)
    message = EmailMultiAlternatives(
        subject=f"[certmgr] Daily summary: {context['expired']} expired, "
        f"{context['critical']} critical, {plural(context['channels_count'], 'channel')} "
        "needing action",
        body=render_to_string("emails/staff_summary.txt", context),
        to=recipients,
    )
    message.attach_alternative(render_to_string("emails/staff_summary.html", context), "text/html")
    message.send()
    return len(recipients)


def staff_summary_context(*, now: datetime) -> dict:
    statuses = CertificateStatus.values
    counts = (
        Certificate.objects.filter(replaced_by__isnull=True)
        .order_by()
        .values("institution_id")
        .annotate(**{status: Count("pk", filter=status_q(status, now)) for status in statuses})
    )
    by_institution = {row["institution_id"]: row for row in counts}
    labels = dict(CertificateStatus.choices)
    rows = [
        {
            "institution": institution,
            "counts": [
                (labels[status], by_institution.get(institution.pk, {}).get(status, 0))
                for status in statuses
            ],
        }
        for institution in Institution.objects.order_by("name")
    ]
    channels = SalesChannel.objects.filter(
        Q(probe_status__in=PROBE_PROBLEMS)
        | Q(ssl_mode=SalesChannel.SslMode.MANAGED, renewal_failures__gte=RENEWAL_FAILURES_ALERT)
    ).select_related("institution")
    since = now - timedelta(days=1)
    webhook_failures = (
        Notification.objects.filter(created_at__gte=since)
        .exclude(webhook_error="")
        .values_list("institution__name", flat=True)
        .distinct()
    )
    return {
        "now": now,
        "statuses": [labels[status] for status in statuses],
        "rows": rows,
        "expired": sum(by_institution.get(i, {}).get("expired", 0) for i in by_institution),
        "critical": sum(by_institution.get(i, {}).get("critical", 0) for i in by_institution),
        "channels": [
            {
                "channel": channel,
                "url": absolute_url(channel.get_absolute_url()),
                "problem": _channel_problem(channel),
            }
            for channel in channels.order_by("institution__name", "hostname")[:200]
        ],
        "channels_count": channels.count(),
        "findings_today": Notification.objects.filter(created_at__gte=since).count(),
        "webhook_failures": sorted(webhook_failures),
        "base_url": settings.CERTMGR_BASE_URL,
    }


def _channel_problem(channel: SalesChannel) -> str:
    """What is wrong with a channel, in the summary's few words."""
    if channel.renewal_failing:
        return f"renewal failed {channel.renewal_failures} times in a row"
    finding = probe_finding(channel)
    return finding.words if finding is not None else channel.get_probe_status_display()
