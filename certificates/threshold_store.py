"""The expiry thresholds stored with each certificate (ExpiryThreshold): when it is to be
warned about under the current settings (the rules are in thresholds.py), stored when the
certificate is, dropped when it is replaced, rebuilt after the settings change (README,
"Expiry monitoring"). check_expiry reads them as one index range.
"""

from datetime import datetime

from django.conf import settings
from django.db import transaction

from . import thresholds as rules
from .models import Certificate, ExpiryThreshold
from .renewal import renewal_latest

# Certificates whose thresholds are rebuilt per transaction (bounded queries and memory).
REBUILD_BATCH_SIZE = 1000


def certificate_thresholds(certificate: Certificate) -> list[rules.Threshold]:
    """The certificate's expiry thresholds (thresholds.py) under the current settings.

    For a managed certificate, those at or before its planned renewal are dropped: the
    platform renews it then, and a failing renewal is reported as its own finding.
    """
    return thresholds_for(
        expires_at=certificate.expires_at,
        not_before=certificate.not_before,
        source=certificate.source,
    )


def thresholds_for(
    *, expires_at: datetime, not_before: datetime | None, source: str
) -> list[rules.Threshold]:
    """certificate_thresholds() from the certificate's values (a row, or a migration's model)."""
    renews_at = None
    if source == Certificate.Source.MANAGED and not_before:
        # The latest moment the renewal may be planned at: the thresholds before it are the
        # platform's business (renewal.py draws the moment at random inside its window).
        renews_at = renewal_latest(not_before=not_before, not_after=expires_at)
    return rules.certificate_thresholds(
        not_before=not_before,
        not_after=expires_at,
        days=settings.CERTMGR_NOTIFY_DAYS,
        short_lived_days=settings.CERTMGR_SHORT_LIVED_DAYS,
        renews_at=renews_at,
    )


def certificate_thresholds_store(certificate: Certificate, *, now: datetime) -> None:
    """Store when a new certificate is to be warned about (ExpiryThreshold rows): each
    threshold ahead, and the newest one already crossed, due at once."""
    ExpiryThreshold.objects.bulk_create(
        ExpiryThreshold(
            certificate=certificate, name=threshold.name, crossed_at=threshold.crossed_at
        )
        for threshold in rules.thresholds_due(certificate_thresholds(certificate), now)
    )


def certificate_thresholds_drop(certificate: Certificate) -> None:
    """A replaced certificate is not warned about any more: drop its thresholds (those
    crossed and not recorded yet too, so that check_expiry need not look for renewals)."""
    ExpiryThreshold.objects.filter(certificate=certificate).delete()


def thresholds_rebuild(*, now: datetime) -> int:
    """Store again the thresholds ahead of every certificate in use, under the current
    settings (after CERTMGR_NOTIFY_DAYS or CERTMGR_SHORT_LIVED_DAYS changed). Thresholds
    already crossed are left as they are: they were told. Returns how many are stored."""
    current = (
        Certificate.objects.filter(replaced_by__isnull=True)
        .order_by("pk")
        .values_list("pk", "expires_at", "not_before", "source")
    )
    stored, last_pk = 0, 0
    while rows := list(current.filter(pk__gt=last_pk)[:REBUILD_BATCH_SIZE]):
        last_pk = rows[-1][0]
        ahead = [
            ExpiryThreshold(certificate_id=pk, name=threshold.name, crossed_at=threshold.crossed_at)
            for pk, expires_at, not_before, source in rows
            for threshold in thresholds_for(
                expires_at=expires_at, not_before=not_before, source=source
            )
            if threshold.crossed_at > now
        ]
        with transaction.atomic():
            ExpiryThreshold.objects.filter(
                certificate_id__in=[row[0] for row in rows], crossed_at__gt=now
            ).delete()
            ExpiryThreshold.objects.bulk_create(ahead, ignore_conflicts=True)
        stored += len(ahead)
    return stored
