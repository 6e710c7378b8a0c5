"""Reads of the sales-channel domain."""

from datetime import datetime

from django.shortcuts import get_object_or_404

from certificates.models import Certificate
from certificates.selectors import identity_proofs_valid

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


def channel_identity_proof(channel: SalesChannel, now: datetime) -> Certificate | None:
    """The domain-association file the channel's hostname serves, or None (404).

    Nothing unless Apple Pay is enabled on the channel. The proof the channel names when it
    names one (and only that one: two channels of an institution may belong to different
    merchants or payment providers), else the institution's latest proof; either only while
    it has not expired. One query.
    """
    if not channel.apple_pay_enabled:
        return None
    proofs = identity_proofs_valid(channel.institution_id, now)
    if channel.apple_identity_proof_id:
        proofs = proofs.filter(pk=channel.apple_identity_proof_id)
    return proofs.first()


def channel_for_user(user, pk: int) -> SalesChannel:
    """The channel if the user may see it, else 404 (never 403: ids must not leak)."""
    queryset = SalesChannel.objects.visible_to(user).select_related("institution", "certificate")
    return get_object_or_404(queryset, pk=pk)
