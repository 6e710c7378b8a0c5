"""The CA's rate limits as certmgr counts them (README, "Rate limits (the CA's budgets)"): what
each budget is, how a setting writes one, which name it is kept per, and which budget a CA's
"rateLimited" answer was about. The ledger itself is acme_client/budgets.py.

Let's Encrypt's limits (https://letsencrypt.org/docs/rate-limits/) are the defaults: 300 new
orders per account per 3 hours, 50 certificates per registered domain per 7 days (whatever
the account), 5 certificates per exact set of names per 7 days, 5 failed validations per
hostname per account per hour. Registered domains come from the Public Suffix List
(https://publicsuffix.org/), as Let's Encrypt computes them, through `publicsuffixlist`.

No Django here: settings come in as arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cache

from publicsuffixlist import PublicSuffixList


class Budget(StrEnum):
    NEW_ORDERS = "new_orders"  # per ACME account (the directory in use)
    REGISTERED_DOMAIN = "registered_domain"  # per registered domain, all accounts
    DUPLICATE = "duplicate"  # per exact set of names
    FAILED_VALIDATIONS = "failed_validations"  # per hostname, per account


# The setting that sets each budget, and its default (Let's Encrypt's limit).
SETTINGS: dict[Budget, str] = {
    Budget.NEW_ORDERS: "ACME_RATE_LIMIT_NEW_ORDERS",
    Budget.REGISTERED_DOMAIN: "ACME_RATE_LIMIT_REGISTERED_DOMAIN",
    Budget.DUPLICATE: "ACME_RATE_LIMIT_DUPLICATE",
    Budget.FAILED_VALIDATIONS: "ACME_RATE_LIMIT_FAILED_VALIDATIONS",
}
DEFAULTS: dict[Budget, str] = {
    Budget.NEW_ORDERS: "300/3h",
    Budget.REGISTERED_DOMAIN: "50/7d",
    Budget.DUPLICATE: "5/7d",
    Budget.FAILED_VALIDATIONS: "5/1h",
}
# Budgets a certificate counts against only once issued: an order that fails before that
# gives their slots back (Let's Encrypt counts issued certificates for them).
COUNTS_ISSUED = (Budget.REGISTERED_DOMAIN, Budget.DUPLICATE)

OFF = "off"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Limit:
    """At most `count` in any `window`."""

    count: int
    window: timedelta


def limit_parse(value: str) -> Limit | None:
    """A budget setting: "N/W" (W a number and s, m, h or d: "300/3h", "50/7d", "5/h"), or
    "off" (None: not counted). Raises ValueError for anything else."""
    if value.strip().lower() == OFF:
        return None
    match = _LIMIT.match(value.lower())
    if match is None:
        raise ValueError(
            f"{value!r} is not a rate limit: write it as N/W, e.g. 300/3h or 50/7d, or off"
        )
    count, number, unit = int(match[1]), int(match[2] or 1), match[3]
    if count < 1 or number < 1:
        raise ValueError(f"{value!r}: the count and the window must be at least 1")
    return Limit(count=count, window=timedelta(seconds=number * _UNITS[unit]))


@cache
def _suffixes() -> PublicSuffixList:
    # The list the package ships (read once per process, some tens of milliseconds).
    return PublicSuffixList()


def registered_domain(hostname: str) -> str:
    """The registered domain of a hostname by the Public Suffix List: shop.example.co.uk ->
    example.co.uk, a.b.example.com -> example.com; a name that is itself a public suffix is
    its own. A last label the list does not know counts as a public suffix (its "*" rule)."""
    name = hostname.rstrip(".").lower()
    return _suffixes().privatesuffix(name) or name


def name_set_key(names: list[str] | tuple[str, ...]) -> str:
    """The key of an exact set of names: sorted, lower-case, comma-separated (Let's Encrypt
    ignores case and order for duplicates)."""
    return ",".join(sorted({name.rstrip(".").lower() for name in names}))


def rate_limit_scope(texts: list[str], *, hostname: str) -> tuple[Budget, str]:
    """Which budget a CA's "rateLimited" problem was about, and its key: said by the CA's
    detail, matched against names certmgr knows (nothing the CA wrote becomes a key).

    Let's Encrypt's details read "too many certificates (5) already issued for this exact set
    of identifiers ...", "too many failed authorizations (5) for "shop.example.com" ...",
    "too many certificates (50) already issued for "example.com" ...", "too many new orders
    (300) ..."; anything else is taken as the whole account's.
    """
    text = " ".join(texts).lower()
    domain = registered_domain(hostname)
    named = f'"{hostname}"' in text or f'"{domain}"' in text
    if "exact set" in text:
        return Budget.DUPLICATE, name_set_key([hostname])
    if named and "fail" in text:
        return Budget.FAILED_VALIDATIONS, hostname
    if named:
        return Budget.REGISTERED_DOMAIN, domain
    return Budget.NEW_ORDERS, ""
