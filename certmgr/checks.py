"""System checks of certmgr's own settings (`manage.py check`, and `check --deploy`)."""

from django.conf import settings
from django.core.checks import Warning, register


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
