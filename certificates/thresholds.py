"""When a certificate's expiry warnings are due (pure, no Django).

A certificate valid from not_before to not_after is warned about at a few *thresholds*, each a
name and the instant it is crossed:

- by default 30, 14, 7, 3 and 1 days before expiry and at expiry ("30d" ... "1d", "0d");
- for a short-lived certificate (lifetime under `short_lived_days`, 60 by default), whose
  whole life may be shorter than the first day threshold, when half and a quarter of its
  lifetime remain ("half", "quarter") and at expiry ("0d") instead. So a 6-day certificate is
  warned 3 days and 1.5 days before it expires, a 45-day one 22.5 and 11.25 days before, and
  90-day and 25-month certificates get the day thresholds.

A certificate whose start is unknown (expiry typed by hand) gets the day thresholds.

`renews_at` is for certificates the platform renews itself (managed, ACME): a warning crossed
at or before the planned renewal says nothing an operator can act on, so those are dropped and
only the thresholds after it remain: they mean the renewal is late.

Only the newest threshold crossed is worth telling (see threshold_latest_crossed): a
certificate uploaded with 5 days left is reported once as "7d", not as 30d, 14d and 7d at once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_DAYS = (30, 14, 7, 3, 1, 0)
DEFAULT_SHORT_LIVED_DAYS = 60
HALF = "half"
QUARTER = "quarter"
AT_EXPIRY = "0d"


@dataclass(frozen=True)
class Threshold:
    name: str
    crossed_at: datetime


def day_threshold_name(days: int) -> str:
    return f"{days}d"


def certificate_thresholds(
    *,
    not_before: datetime | None,
    not_after: datetime,
    days: Sequence[int] = DEFAULT_DAYS,
    short_lived_days: int = DEFAULT_SHORT_LIVED_DAYS,
    renews_at: datetime | None = None,
) -> list[Threshold]:
    """The certificate's thresholds, earliest first (see the module docstring)."""
    lifetime = not_after - not_before if not_before is not None else None
    if lifetime is not None and timedelta(0) < lifetime < timedelta(days=short_lived_days):
        thresholds = [
            Threshold(HALF, not_after - lifetime / 2),
            Threshold(QUARTER, not_after - lifetime / 4),
            Threshold(AT_EXPIRY, not_after),
        ]
    else:
        thresholds = [
            Threshold(day_threshold_name(count), not_after - timedelta(days=count))
            for count in sorted(set(days), reverse=True)
            if count >= 0
        ]
    if renews_at is not None:
        thresholds = [threshold for threshold in thresholds if threshold.crossed_at > renews_at]
    return sorted(thresholds, key=lambda threshold: threshold.crossed_at)


def threshold_latest_crossed(thresholds: Sequence[Threshold], now: datetime) -> Threshold | None:
    """The newest threshold crossed at `now` (crossed_at <= now), or None."""
    crossed = [threshold for threshold in thresholds if threshold.crossed_at <= now]
    return max(crossed, key=lambda threshold: threshold.crossed_at) if crossed else None


def thresholds_due(thresholds: Sequence[Threshold], now: datetime) -> list[Threshold]:
    """The thresholds to store for a certificate at `now`: those still ahead, and the newest
    already crossed, if any, moved to `now` (due at once, told once)."""
    latest = threshold_latest_crossed(thresholds, now)
    due = [Threshold(latest.name, now)] if latest is not None else []
    return due + [threshold for threshold in thresholds if threshold.crossed_at > now]
