"""The certificate profiles the CA offers (its directory's `meta.profiles`,
https://datatracker.ietf.org/doc/draft-ietf-acme-profiles/), for the SSL Management page.

The directory is read with the ACME client's own code (protocol.directory_client) and kept in
Django's cache for PROFILES_CACHE_SECONDS, so that the page does not ask the CA at every view.
A page does not wait on a CA that does not answer: one request, PROFILES_TIMEOUT_SECONDS at
most, and the failure is remembered for PROFILES_FAILURE_CACHE_SECONDS.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.core.cache import cache

from . import protocol

logger = logging.getLogger(__name__)

PROFILES_CACHE_SECONDS = 300
PROFILES_FAILURE_CACHE_SECONDS = 60
PROFILES_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class CaProfiles:
    """What the CA's directory says of profiles: `known` is False when it could not be read;
    `profiles` maps each profile's name to its description (empty: the CA lists none)."""

    known: bool
    profiles: dict[str, str] = field(default_factory=dict)


def _cache_key(directory_url: str) -> str:
    return "acme_client:profiles:" + hashlib.sha256(directory_url.encode()).hexdigest()


def ca_profiles() -> CaProfiles:
    """The profiles of the CA at ACME_DIRECTORY_URL (cached, see the module docstring)."""
    directory_url = settings.ACME_DIRECTORY_URL
    key = _cache_key(directory_url)
    cached = cache.get(key)
    if cached is not None:
        return CaProfiles(known=cached["known"], profiles=dict(cached["profiles"]))
    try:
        directory = protocol.directory_client(
            directory_url=directory_url,
            ca_bundle=settings.ACME_CA_BUNDLE or True,
            deadline=protocol.deadline_in(PROFILES_TIMEOUT_SECONDS),
            timeout=PROFILES_TIMEOUT_SECONDS,
            retry=False,
        ).directory
    except (
        protocol.AcmeProblem,
        protocol.AcmeFailure,
        requests.RequestException,
        ValueError,
    ) as error:
        logger.warning("the CA's directory could not be read for its profiles: %s", error)
        cache.set(key, {"known": False, "profiles": {}}, PROFILES_FAILURE_CACHE_SECONDS)
        return CaProfiles(known=False)
    profiles = protocol.directory_profiles(directory)
    cache.set(key, {"known": True, "profiles": profiles}, PROFILES_CACHE_SECONDS)
    return CaProfiles(known=True, profiles=profiles)


def ca_profiles_forget() -> None:
    """Drop the cached answer (tests; an operator who just changed the CA's profiles)."""
    cache.delete(_cache_key(settings.ACME_DIRECTORY_URL))
