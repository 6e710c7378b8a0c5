"""System checks of certmgr's own settings (`manage.py check`, and `check --deploy`)."""

import ipaddress

from django.conf import settings
from django.core.checks import Error, Warning, register

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
