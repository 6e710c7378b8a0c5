"""When to renew a managed certificate and when to retry after a failure (pure, no Django).

- Renewal is due at the time ACME Renewal Information (RFC 9773) suggests when the CA offers
  it; otherwise at a random moment of a window that ends at 2/3 of the certificate's lifetime,
  or at 1/2 for lifetimes under 10 days (short-lived certificates need a larger margin in
  absolute terms), and starts a sixth of the lifetime earlier for short lifetimes, a thirtieth
  for longer ones (3 days of a 90-day certificate, about the width of Let's Encrypt's ARI
  windows). Certificates issued together (an import, a first switch to managed) would
  otherwise renew together at every renewal, forever; the random moment spreads them out
  (README, "Managed certificates"). The caller passes the random source, so tests pin it.
- After consecutive failures, the next attempt waits 1 minute, 10 minutes, 100 minutes, and
  then a day each time, but never more than a tenth of the certificate's lifetime nor a
  quarter of the time it has left: a 1-minute wait is longer than a 20-second certificate,
  and a daily retry of a certificate with a day left would let it expire.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

SHORT_LIFETIME = timedelta(days=10)
# Where the renewal window ends, as a fraction of the lifetime, and how wide it is.
WINDOW_END_SHORT, WINDOW_WIDTH_SHORT = 1 / 2, 1 / 6
WINDOW_END_LONG, WINDOW_WIDTH_LONG = 2 / 3, 1 / 30
BACKOFF_STEPS = (timedelta(minutes=1), timedelta(minutes=10), timedelta(minutes=100))
BACKOFF_AFTER_STEPS = timedelta(days=1)
BACKOFF_LIFETIME_FRACTION = 1 / 10
BACKOFF_REMAINING_FRACTION = 1 / 4
# However short the certificate, one channel is not retried more often than this.
BACKOFF_FLOOR = timedelta(seconds=1)


def renewal_window(*, not_before: datetime, not_after: datetime) -> tuple[datetime, datetime]:
    """(start, end) of the window in which a certificate without ARI is renewed."""
    lifetime = not_after - not_before
    if lifetime < SHORT_LIFETIME:
        end, width = WINDOW_END_SHORT, WINDOW_WIDTH_SHORT
    else:
        end, width = WINDOW_END_LONG, WINDOW_WIDTH_LONG
    return not_before + lifetime * (end - width), not_before + lifetime * end


def renewal_due_at(
    *,
    not_before: datetime,
    not_after: datetime,
    suggested: datetime | None = None,
    random: Callable[[], float],
) -> datetime:
    """When a certificate valid from not_before to not_after should be renewed: ARI's
    suggestion, else a moment of renewal_window() drawn with `random()` (in [0, 1))."""
    if suggested is not None:
        return suggested
    start, end = renewal_window(not_before=not_before, not_after=not_after)
    return start + (end - start) * random()


def renewal_latest(*, not_before: datetime, not_after: datetime) -> datetime:
    """The latest moment renewal_due_at() may choose without ARI (the end of the window)."""
    return renewal_window(not_before=not_before, not_after=not_after)[1]


def failure_backoff(
    failures: int,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    now: datetime | None = None,
) -> timedelta:
    """The wait before the next attempt after `failures` consecutive failures (>= 1), capped
    by the lifetime and the time left of the certificate in use (when there is one)."""
    if failures < 1:
        return timedelta(0)
    steps = len(BACKOFF_STEPS)
    wait = BACKOFF_STEPS[failures - 1] if failures <= steps else BACKOFF_AFTER_STEPS
    if not_before is not None and not_after is not None and not_after > not_before:
        wait = min(wait, (not_after - not_before) * BACKOFF_LIFETIME_FRACTION)
    if not_after is not None and now is not None and not_after > now:
        wait = min(wait, (not_after - now) * BACKOFF_REMAINING_FRACTION)
    return max(wait, BACKOFF_FLOOR)
