"""The DNS resolver the onboarding checks ask: CERTMGR_DNS_RESOLVERS, else the system's."""

from django.conf import settings

from .dns import resolver_make


def resolver():
    return resolver_make(settings.CERTMGR_DNS_RESOLVERS, settings.CERTMGR_DNS_TIMEOUT)
