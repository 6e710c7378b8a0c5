"""The CA in use, named on the pages that speak of managed certificates (README,
"Onboarding a hostname"): from ACME_DIRECTORY_URL, saying plainly when it is a staging CA."""

from django.conf import settings

from .problems import ca_describe


def acme_ca(request) -> dict:
    return {"acme_ca": ca_describe(settings.ACME_DIRECTORY_URL)}
