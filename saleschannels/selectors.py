"""Reads of the sales-channel domain."""

from datetime import datetime

from certmgr.models import Certificate

from .coverage import certificate_covers_hostname
from .models import SalesChannel


def certificate_unusable_reason(certificate: Certificate, channel: SalesChannel, now: datetime):
    """Why `certificate` cannot be used by `channel` in uploaded mode, or None when it can."""
    if certificate.institution_id != channel.institution_id:
        return "This certificate belongs to another institution."
    if certificate.kind != Certificate.Kind.SSL:
        return "Only an SSL certificate can be used by a sales channel."
    if not certificate.certificate_pem:
        return "This certificate could not be read, so it cannot be deployed."
    if not certificate.has_private_key:
        return "This certificate has no private key, so it cannot be deployed."
    if certificate.expires_at <= now:
        return f"This certificate expired on {certificate.expires_at:%Y-%m-%d}."
    if certificate.not_before and certificate.not_before > now:
        return f"This certificate is not valid before {certificate.not_before:%Y-%m-%d %H:%M} UTC."
    if not certificate_covers_hostname(certificate.domains, channel.hostname):
        names = ", ".join(certificate.domains) or "no domain"
        return f"This certificate is for {names}, not for {channel.hostname}."
    return None


def channel_certificate_choices(channel: SalesChannel, now: datetime) -> list[Certificate]:
    """The institution's certificates the channel may use: SSL, with a key, valid, covering it."""
    candidates = (
        Certificate.objects.filter(
            institution_id=channel.institution_id,
            kind=Certificate.Kind.SSL,
            expires_at__gt=now,
        )
        .exclude(private_key_encrypted="")
        .exclude(certificate_pem="")
        .defer("content", "certificate_pem", "chain_pem", "private_key_encrypted")
        .order_by("-expires_at", "pk")
    )
    return [
        certificate
        for certificate in candidates
        if (certificate.not_before is None or certificate.not_before <= now)
        and certificate_covers_hostname(certificate.domains, channel.hostname)
    ]
