"""Days left before a certificate expires, as a number and in words: the one rule every page,
the banner, the list, its CSV export and the digests use (README, "Expiry monitoring").

The rule: days left are the time until expiry in days, rounded up, so a part of a day counts
as a whole day. A certificate made to expire in 3 days shows 3 until its last 2 days begin,
and it has N days left or fewer exactly when it expires within N × 24 hours, which is what
the status rules (models.status_conditions: critical when it expires within
CERTMGR_CRITICAL_DAYS) and the day thresholds of the warnings ("7d", thresholds.py) count.
Once expired, the days since expiry are counted in whole days, rounded down ("expired less
than a day ago", "expired 6 days ago"); days left is then minus that number.
"""

from datetime import datetime, timedelta

DAY = timedelta(days=1)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def days_left(expires_at: datetime, now: datetime) -> int:
    """Days until expiry rounded up (a part of a day is a day); after expiry, minus the whole
    days since (rounded down): 3 days → 3, 3 days less a second → 3, just expired → 0,
    6½ days ago → -6."""
    return -((now - expires_at) // DAY)


def expired(expires_at: datetime, now: datetime) -> bool:
    """As the status rules say: expired once the expiry instant is past."""
    return expires_at < now


def expiry_words(expires_at: datetime, now: datetime) -> str:
    """ "3 days left", "1 day left", "expires now", "expired less than a day ago",
    "expired 6 days ago"."""
    left = days_left(expires_at, now)
    if expired(expires_at, now):
        ago = -left
        return "expired less than a day ago" if ago == 0 else f"expired {plural(ago, 'day')} ago"
    if left == 0:
        return "expires now"
    return f"{plural(left, 'day')} left"


def expires_in_words(expires_at: datetime, now: datetime) -> str:
    """The same after "expires"/"expired" as a verb: "expires in 3 days", "expires within a
    day", "expired 6 days ago"."""
    left = days_left(expires_at, now)
    if expired(expires_at, now) or left == 0:
        return expiry_words(expires_at, now)
    return "expires within a day" if left == 1 else f"expires in {plural(left, 'day')}"
