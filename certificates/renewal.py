"""When to renew a managed certificate and when to retry after a failure (pure, no Django).

- Renewal is due at the time ACME Renewal Information (RFC 9773) suggests when the CA offers
  it; otherwise at 2/3 of the certificate's lifetime, or at 1/2 for lifetimes under 10 days
  (short-lived certificates need a larger margin in absolute terms).
- After consecutive failures, the next attempt waits 1 minute, 10 minutes, 100 minutes, and
  then a day each time.
"""

from datetime import datetime, timedelta

SHORT_LIFETIME = timedelta(days=10)
BACKOFF_STEPS = (timedelta(minutes=1), timedelta(minutes=10), timedelta(minutes=100))
BACKOFF_AFTER_STEPS = timedelta(days=1)


def renewal_due_at(
    *, not_before: datetime, not_after: datetime, suggested: datetime | None = None
) -> datetime:
    """When a certificate valid from not_before to not_after should be renewed."""
    if suggested is not None:
        return suggested
    lifetime = not_after - not_before
    fraction = 1 / 2 if lifetime < SHORT_LIFETIME else 2 / 3
    return not_before + lifetime * fraction


def failure_backoff(failures: int) -> timedelta:
    """The wait before the next attempt after `failures` consecutive failures (>= 1)."""
    if failures < 1:
        return timedelta(0)
    if failures <= len(BACKOFF_STEPS):
        return BACKOFF_STEPS[failures - 1]
    return BACKOFF_AFTER_STEPS
