"""The API's answers, built from the reads the pages use: a channel's status and findings in
the pages' words (saleschannels/status.py), where a certificate is used
(certificates/selectors.py), the verification instructions the channel page shows. Plain
dicts, in the shape of serializers.py."""

from datetime import datetime

from certificates import apple, selectors
from certificates.models import Certificate, CertificateRequest
from certificates.services import payment_processing_predecessor
from saleschannels.models import ProbeStatus, SalesChannel
from saleschannels.selectors import channel_identity_proof
from saleschannels.status import findings_shown, status_context


def _verification_url(channel: SalesChannel) -> str:
    """The URL the channel page names for the HTTP proof of ownership."""
    return f"http://{channel.hostname}{channel.verification_http_path}"


def channel_present(channel: SalesChannel, now: datetime, active: Certificate | None) -> dict:
    """A channel as the API shows it; `active` is its active certificate with its status
    annotated (Certificate.objects.with_status), or None."""
    context = status_context(channel)
    shown = context["status"]
    findings = findings_shown(channel)
    proof = channel_identity_proof(channel, now)
    return {
        "id": channel.pk,
        "institution": channel.institution.slug,
        "name": channel.name,
        "hostname": channel.hostname,
        "ssl_mode": channel.ssl_mode,
        "certificate": channel.certificate_id,
        "acme_profile": channel.acme_profile,
        "active_certificate": None
        if active is None
        else {
            "id": active.pk,
            "name": active.name,
            "expires_at": active.expires_at,
            "days_left": active.days_left(now),
            "status": active.status,
        },
        "status": {
            "status": shown.status,
            "label": shown.label,
            "reason": shown.reason,
            "params": channel.status_params or {},
            "words": shown.words,
            "advice": shown.advice,
            "in_progress": context["in_progress"],
        },
        "findings": {
            section: [vars(item) for item in items] for section, items in findings.items()
        },
        "verification": {
            "verified": channel.hostname_verified,
            "verified_at": channel.hostname_verified_at,
            "method": channel.hostname_verified_by,
            "txt_record_name": channel.verification_txt_name,
            "txt_record_value": channel.verification_token,
            "http_url": _verification_url(channel),
        },
        "probe": {
            "status": channel.probe_status,
            "words": ProbeStatus(channel.probe_status).label,
            "failure": channel.probe_failure,
            "checked_at": channel.probe_checked_at,
        },
        "apple_pay": {
            "enabled": channel.apple_pay_enabled,
            "identity_proof": channel.apple_identity_proof_id,
            "served_proof": proof.pk if proof is not None else None,
            "url": channel.apple_well_known_url,
        },
        "renewal": {
            "due_at": channel.renewal_due_at,
            "failures": channel.renewal_failures,
            "last_attempt_at": channel.renewal_last_attempt_at,
            "next_attempt_at": channel.renewal_next_attempt_at,
        },
        "created_at": channel.created_at,
    }


def certificate_present(
    certificate: Certificate, now: datetime, *, used_by: list, detail: bool = False
) -> dict:
    """A certificate's parsed facts and where it is used; never its key (only whether it has
    one). `certificate` carries its status (with_status)."""
    shown = {
        "id": certificate.pk,
        "institution": certificate.institution.slug,
        "name": certificate.name,
        "kind": certificate.kind,
        "source": certificate.source,
        "status": certificate.status,
        "expires_at": certificate.expires_at,
        "expiry_source": certificate.expiry_source,
        "days_left": certificate.days_left(now),
        "expiry_words": certificate.expiry_words(now),
        "not_before": certificate.not_before,
        "common_name": certificate.common_name,
        "subject": certificate.subject if detail else "",
        "issuer": certificate.issuer,
        "domains": list(certificate.domains or []),
        "serial_number": certificate.serial_number,
        "fingerprint_sha256": certificate.fingerprint_sha256,
        "key": certificate.key_description,
        "has_private_key": certificate.has_private_key,
        "signature_hash": certificate.signature_hash,
        "warnings": [str(warning) for warning in certificate.warnings or []],
        "merchant_identifier": certificate.merchant_identifier,
        "replaces": certificate.replaces_id,
        "used_by": [
            {"id": channel.pk, "name": channel.name, "hostname": channel.hostname}
            for channel in used_by
        ],
        "created_at": certificate.created_at,
    }
    if detail:
        shown["chain"] = [
            {
                "subject": facts.subject,
                "issuer": facts.issuer,
                "not_after": facts.not_after,
                "fingerprint_sha256": facts.fingerprint_sha256,
            }
            for facts in selectors.certificate_chain_facts(certificate)
        ]
    return shown


def certificate_request_present(certificate_request: CertificateRequest) -> dict:
    replaces = None
    if (
        certificate_request.is_pending
        and certificate_request.kind == CertificateRequest.Kind.APPLE_PAYMENT_PROCESSING
    ):
        predecessor = payment_processing_predecessor(
            institution=certificate_request.institution,
            merchant_identifier=certificate_request.merchant_identifier,
        )
        replaces = predecessor.pk if predecessor is not None else None
    return {
        "id": certificate_request.pk,
        "institution": certificate_request.institution.slug,
        "name": certificate_request.name,
        "kind": certificate_request.kind,
        "merchant_identifier": certificate_request.merchant_identifier,
        "pending": certificate_request.is_pending,
        "csr_filename": apple.csr_filename(certificate_request.merchant_identifier),
        "certificate": certificate_request.certificate_id,
        "replaces": replaces,
        "created_at": certificate_request.created_at,
        "completed_at": certificate_request.completed_at,
    }
