"""System checks of certmgr's own settings (`manage.py check`, and `check --deploy`)."""

import ipaddress

from django.conf import settings
from django.core.checks import Error, Warning, register

from acme_client.limits import SETTINGS, limit_parse
from onboarding.resolving import resolver


@register()
def visibility_timeout_check(app_configs, **kwargs) -> list[Warning]:
    """A task still running when its visibility timeout ends is delivered again by Redis: an
    issuance outliving it would place a second order at the CA (the claim drops the second
    certificate, but the CA counts the order against its rate limits)."""
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if not settings.CELERY_BROKER_URL.startswith(("redis", "rediss")) or timeout is None:
        return []
    if timeout >= 2 * settings.ACME_ORDER_TIMEOUT:
        return []
    return [
        Warning(
            f"CELERY_VISIBILITY_TIMEOUT ({timeout} s) is under twice ACME_ORDER_TIMEOUT "
            f"({settings.ACME_ORDER_TIMEOUT:g} s): an issuance still running would be "
            "delivered to another worker and order again.",
            hint="Keep the default (3600) or raise CELERY_VISIBILITY_TIMEOUT.",
            id="certmgr.W001",
        )
    ]


@register()
def onboarding_settings_check(app_configs, **kwargs) -> list[Error]:
    """The onboarding checks read these at each use; a typo would fail every check of every
    hostname, so `manage.py check` says so first (README, "Onboarding a hostname")."""
    errors = []
    for address in settings.CERTMGR_EDGE_ADDRESSES:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            errors.append(
                Error(
                    f"CERTMGR_EDGE_ADDRESSES holds {address!r}, which is not an IP address.",
                    hint="List the edge's public IPv4/IPv6 addresses, comma-separated.",
                    id="certmgr.E001",
                )
            )
    try:
        resolver()
    except ValueError as error:
        errors.append(
            Error(
                str(error),
                hint='Write each DNS server as "address" or "address:port" ("[v6]:port").',
                id="certmgr.E002",
            )
        )
    return errors


@register()
def rate_limit_settings_check(app_configs, **kwargs) -> list[Error]:
    """The CA's budgets (README, "Rate limits (the CA's budgets)") are read at each order; an
    unreadable one counts as the CA's default there, and is named here."""
    errors = []
    for name in SETTINGS.values():
        try:
            limit_parse(getattr(settings, name))
        except ValueError as error:
            errors.append(
                Error(
                    f"{name}: {error}.",
                    hint='Write it as "N/W" with W in s, m, h or d (e.g. 300/3h), or "off".',
                    id="certmgr.E003",
                )
            )
    if settings.ACME_RATE_LIMIT_MARGIN < 0:
        errors.append(
            Error(
                "ACME_RATE_LIMIT_MARGIN is negative.",
                hint="A few seconds (the default is 10).",
                id="certmgr.E003",
            )
        )
    return errors
