"""What the API answers and accepts, declared for the OpenAPI schema (drf-spectacular).

The answers are built from the same reads as the pages (saleschannels/status.py for a
channel's status and findings in plain words, certificates/selectors.py for where a
certificate is used); the inputs are validated by the pages' own forms (views_*.py), and these
input serializers only describe them. Never a private key: no serializer has a field for one.
"""

from rest_framework import serializers

from certificates.models import Certificate, CertificateRequest, CertificateStatus
from saleschannels.models import ChannelStatus, SalesChannel

# --- problems ------------------------------------------------------------------------------


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details (api/problems.py)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(allow_blank=True)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


# --- channels ------------------------------------------------------------------------------


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ChannelStatus.choices)
    label = serializers.CharField()
    reason = serializers.CharField(allow_blank=True, help_text="A typed reason (findings.py).")
    params = serializers.DictField(help_text="The reason's parameters.")
    words = serializers.CharField(allow_blank=True)
    advice = serializers.CharField(allow_blank=True)
    in_progress = serializers.BooleanField()


class FindingSerializer(serializers.Serializer):
    check = serializers.CharField()
    title = serializers.CharField()
    ok = serializers.BooleanField()
    words = serializers.CharField(allow_blank=True)
    advice = serializers.CharField(allow_blank=True)


class FindingsSerializer(serializers.Serializer):
    ownership = FindingSerializer(many=True)
    preflight = FindingSerializer(many=True)


class VerificationSerializer(serializers.Serializer):
    verified = serializers.BooleanField()
    verified_at = serializers.DateTimeField(allow_null=True)
    method = serializers.CharField(allow_blank=True)
    txt_record_name = serializers.CharField()
    txt_record_value = serializers.CharField()
    http_url = serializers.CharField()


class CertificateBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    expires_at = serializers.DateTimeField()
    days_left = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CertificateStatus.choices)


class ProbeSerializer(serializers.Serializer):
    status = serializers.CharField(allow_blank=True)
    words = serializers.CharField()
    failure = serializers.CharField(allow_blank=True)
    checked_at = serializers.DateTimeField(allow_null=True)


class ApplePaySerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    identity_proof = serializers.IntegerField(allow_null=True)
    served_proof = serializers.IntegerField(allow_null=True)
    url = serializers.CharField()


class RenewalSerializer(serializers.Serializer):
    due_at = serializers.DateTimeField(allow_null=True)
    failures = serializers.IntegerField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)


class ChannelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    institution = serializers.CharField(help_text="The institution's slug.")
    name = serializers.CharField()
    hostname = serializers.CharField()
    ssl_mode = serializers.ChoiceField(choices=SalesChannel.SslMode.choices)
    certificate = serializers.IntegerField(
        allow_null=True, help_text="The uploaded certificate chosen (uploaded mode)."
    )
    acme_profile = serializers.CharField(allow_blank=True)
    active_certificate = CertificateBriefSerializer(allow_null=True)
    status = StatusSerializer()
    findings = FindingsSerializer()
    verification = VerificationSerializer()
    probe = ProbeSerializer()
    apple_pay = ApplePaySerializer()
    renewal = RenewalSerializer()
    created_at = serializers.DateTimeField()


class ChannelPageSerializer(serializers.Serializer):
    """One page of channels (cursor pagination: follow `next`)."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ChannelSerializer(many=True)


class ChannelInputSerializer(serializers.Serializer):
    """Create (both fields) or change (either) a channel: the New sales channel form."""

    name = serializers.CharField(max_length=200)
    hostname = serializers.CharField(max_length=260)


class ChannelUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    hostname = serializers.CharField(max_length=260, required=False)


class SslModeInputSerializer(serializers.Serializer):
    """SSL Management: the page's form."""

    mode = serializers.ChoiceField(choices=SalesChannel.SslMode.choices)
    certificate = serializers.IntegerField(
        required=False, allow_null=True, help_text="uploaded mode: the certificate's id"
    )
    acme_profile = serializers.CharField(required=False, allow_blank=True, max_length=64)


class ApplePayInputSerializer(serializers.Serializer):
    """The channel's Apple Pay page: its form's fields."""

    apple_pay_enabled = serializers.BooleanField()
    apple_identity_proof = serializers.IntegerField(
        required=False, allow_null=True, help_text="None: the institution's latest valid proof."
    )


class ActionResultSerializer(serializers.Serializer):
    """What *Verify now* / *Check now* found, with the channel as it is now."""

    detail = serializers.CharField()
    channel = ChannelSerializer()


# --- certificates --------------------------------------------------------------------------


class ChannelBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    hostname = serializers.CharField()


class ChainFactSerializer(serializers.Serializer):
    subject = serializers.CharField(allow_blank=True)
    issuer = serializers.CharField(allow_blank=True)
    not_after = serializers.DateTimeField(allow_null=True)
    fingerprint_sha256 = serializers.CharField(allow_blank=True)


class CertificateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    institution = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Certificate.Kind.choices)
    source = serializers.ChoiceField(choices=Certificate.Source.choices)
    status = serializers.ChoiceField(choices=CertificateStatus.choices)
    expires_at = serializers.DateTimeField()
    expiry_source = serializers.ChoiceField(choices=Certificate.ExpirySource.choices)
    days_left = serializers.IntegerField()
    expiry_words = serializers.CharField()
    not_before = serializers.DateTimeField(allow_null=True)
    common_name = serializers.CharField(allow_blank=True)
    subject = serializers.CharField(allow_blank=True)
    issuer = serializers.CharField(allow_blank=True)
    domains = serializers.ListField(child=serializers.CharField())
    serial_number = serializers.CharField(allow_blank=True)
    fingerprint_sha256 = serializers.CharField(allow_blank=True)
    key = serializers.CharField(allow_blank=True, help_text="Key type and size or curve.")
    has_private_key = serializers.BooleanField()
    signature_hash = serializers.CharField(allow_blank=True)
    warnings = serializers.ListField(child=serializers.CharField())
    merchant_identifier = serializers.CharField(allow_blank=True)
    replaces = serializers.IntegerField(allow_null=True)
    used_by = ChannelBriefSerializer(many=True)
    chain = ChainFactSerializer(many=True, required=False)
    created_at = serializers.DateTimeField()


class CertificatePageSerializer(serializers.Serializer):
    """One page of certificates, soonest expiry first (follow `next`)."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CertificateSerializer(many=True)


class CertificateUploadSerializer(serializers.Serializer):
    """The SSL upload form (multipart): its checks and refusals are the page's."""

    name = serializers.CharField(max_length=200)
    certificate = serializers.FileField()
    private_key = serializers.FileField(required=False)
    chain = serializers.FileField(required=False)
    passphrase = serializers.CharField(required=False, allow_blank=True)
    expires_at = serializers.DateField(
        required=False, help_text="Only when the certificate cannot be read."
    )


class IdentityProofUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    file = serializers.FileField()
    expires_at = serializers.DateField()


class AppleCertificateUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    merchant_identifier = serializers.CharField(required=False, allow_blank=True)
    certificate = serializers.FileField()
    private_key = serializers.FileField(required=False)
    chain = serializers.FileField(required=False)
    passphrase = serializers.CharField(required=False, allow_blank=True)


class CertificateRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    institution = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=CertificateRequest.Kind.choices)
    merchant_identifier = serializers.CharField()
    pending = serializers.BooleanField()
    csr_filename = serializers.CharField()
    certificate = serializers.IntegerField(allow_null=True)
    replaces = serializers.IntegerField(
        allow_null=True, help_text="The payment processing certificate it will replace."
    )
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class CertificateRequestInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CertificateRequest.Kind.choices)
    merchant_identifier = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class CertificateRequestCompleteSerializer(serializers.Serializer):
    certificate = serializers.FileField(help_text="The .cer Apple issued (DER or PEM).")
