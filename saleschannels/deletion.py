"""What deleting a sales channel would do, read before it is done: the confirmation page names
it (core.confirmation), the delete service records it in the audit trail.

The channel's files leave the TLS edge at once, so its hostname stops being served with its
certificate; with Apple Pay on, the domain-association file stops too (Apple's verification
of the domain then fails); in managed mode, renewal stops.
"""

from dataclasses import dataclass
from datetime import datetime

from certificates.models import Certificate
from core.confirmation import impact_token

from .models import SalesChannel
from .selectors import channel_identity_proof


@dataclass(frozen=True)
class ChannelDeletion:
    channel: SalesChannel
    # The certificate the edge serves for the hostname now (None: none is served).
    served_certificate: Certificate | None
    # The Apple Pay file the hostname serves now (None: none).
    apple_pay_proof: Certificate | None

    @property
    def managed(self) -> bool:
        return self.channel.ssl_mode == SalesChannel.SslMode.MANAGED

    @property
    def token(self) -> str:
        return impact_token(
            "channel",
            self.channel.pk,
            self.channel.hostname,
            self.channel.ssl_mode,
            self.served_certificate.pk if self.served_certificate is not None else "",
            self.apple_pay_proof.pk if self.apple_pay_proof is not None else "",
        )


def channel_deletion(channel: SalesChannel, now: datetime) -> ChannelDeletion:
    """What deleting `channel` would stop at `now` (two queries at most)."""
    served = None
    if channel.ssl_mode != SalesChannel.SslMode.NONE and channel.active_certificate_id:
        served = (
            Certificate.objects.filter(pk=channel.active_certificate_id)
            .only("pk", "name", "expires_at", "institution_id")
            .first()
        )
    return ChannelDeletion(
        channel=channel,
        served_certificate=served,
        apple_pay_proof=channel_identity_proof(channel, now),
    )
