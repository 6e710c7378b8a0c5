"""Issuing for a managed channel in the test's own thread, as a worker's task would."""

from acme_client import services
from certificates.models import Certificate


def issue(channel) -> Certificate | None:
    """Claim the channel and run its issuance; the certificate, or None when it failed."""
    claim = services.channel_issuance_claim(channel_id=channel.pk)
    assert claim, "the channel could not be claimed"
    return services.channel_certificate_issue(channel_id=channel.pk, claim=claim)
