"""Sales channels: the webshops, each on its own hostname, and which certificate they use."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from certificates.apple import WELL_KNOWN_PATH as APPLE_WELL_KNOWN_PATH
from core.tenancy import foreign_institution_links_refuse
from institutions.models import visible_institution_ids


class SalesChannelQuerySet(models.QuerySet):
    def visible_to(self, user) -> "SalesChannelQuerySet":
        return self.filter(institution__in=visible_institution_ids(user))


class ProbeStatus(models.TextChoices):
    UNKNOWN = "", "Not checked yet"
    OK = "ok", "Serves the active certificate"
    MISMATCH = "mismatch", "Serves another certificate"
    EXPIRED = "expired", "Serves an expired certificate"
    FAILED = "failed", "TLS handshake failed"


# Probe results that need an operator: they count in the alert banner.
PROBE_PROBLEMS = (ProbeStatus.MISMATCH, ProbeStatus.EXPIRED, ProbeStatus.FAILED)


class ProbeFailure(models.TextChoices):
    """Why the last probe (TLS handshake, or fetch of the Apple Pay file) did not get what it
    checks, in fixed plain words: nothing the remote end sent (a header, an error text) and
    no raw exception text ever reaches a page; those details go to the log (probe.py)."""

    NONE = "", "—"
    INTERNAL_ADDRESS = (
        "internal_address",
        "Not checked: the hostname resolves to an internal (non-public) address, and the probe "
        "connects only to public ones",
    )
    DNS = "dns", "The hostname does not resolve (DNS)"
    REFUSED = "refused", "Connection refused: nothing listens on the HTTPS port"
    TIMEOUT = "timeout", "No answer within the probe's time limit"
    CLOSED = "closed", "The server closed the connection during the TLS handshake"
    NETWORK = "network", "The server could not be reached (network error)"
    NO_CERTIFICATE = "no_certificate", "The server has no usable certificate for this name"
    NOT_TLS = "not_tls", "The HTTPS port does not speak TLS (plain HTTP?)"
    OLD_TLS = "old_tls", "The server only offers an outdated TLS version"
    HANDSHAKE = "handshake", "The TLS handshake failed"
    NO_PEER_CERTIFICATE = "no_peer_certificate", "The server sent no certificate"
    HTTP_INVALID = "http_invalid", "No valid HTTP answer"
    # The Apple Pay file (the fetch itself got an HTTP answer, or nothing is served).
    NO_PROOF = (
        "no_proof",
        "No valid identity proof to serve: upload the institution's domain-association file",
    )
    PROOF_EXPIRED = (
        "proof_expired",
        "No valid identity proof to serve: the one chosen for this channel has expired",
    )
    REDIRECT = "redirect", "The URL answers with a redirect: Apple does not follow redirects"
    FILE_MISSING = "file_missing", "The URL answers 404 Not Found instead of the file"
    HTTP_ERROR = "http_error", "The URL answers with an HTTP error instead of the file"
    OTHER_CONTENT = "other_content", "The URL serves other content than the identity proof"
    UNVERIFIED = (
        "unverified",
        "Not served: the hostname's ownership is not verified yet (see Proof of ownership)",
    )
    # Anything else, and the free-text reasons recorded before the reasons were typed.
    OTHER = "other", "The check failed (the details are in the platform's log)"


# Apple Pay reasons about the file itself; the others say why it could not be fetched.
APPLE_FILE_FAILURES = (
    ProbeFailure.UNVERIFIED,
    ProbeFailure.NO_PROOF,
    ProbeFailure.PROOF_EXPIRED,
    ProbeFailure.REDIRECT,
    ProbeFailure.FILE_MISSING,
    ProbeFailure.HTTP_ERROR,
    ProbeFailure.OTHER_CONTENT,
    ProbeFailure.OTHER,
)
PROBE_FAILURE_MAX_LENGTH = 24

VERIFICATION_TXT_LABEL = "_certmgr-challenge"
VERIFICATION_HTTP_PREFIX = "/.well-known/certmgr-challenge/"


class ChannelStatus(models.TextChoices):
    """One status per channel, the same on every page, e-mail, webhook and in /metrics (README,
    "Onboarding a hostname": the lifecycle). Managed channels go unverified -> checking ->
    waiting_* -> (queued) -> issuing -> active -> renewal_due -> (renewal_failing) -> active
    again."""

    NONE = "none", "No SSL"
    UPLOADED = "uploaded", "Uploaded certificate"
    UNVERIFIED = "unverified", "Waiting for proof of ownership"
    CHECKING = "checking", "Checking DNS, CAA and HTTP"
    WAITING_DNS = "waiting_dns", "Waiting for DNS"
    WAITING_CAA = "waiting_caa", "Waiting for CAA"
    WAITING_HTTP = "waiting_http", "Waiting for HTTP"
    ISSUING = "issuing", "Certificate being issued"
    # The order waits for the CA's rate limits (acme_client/budgets.py): the platform's limit,
    # not the channel's failure.
    QUEUED = "queued", "Queued for the CA"
    ISSUANCE_FAILING = "issuance_failing", "Issuance failing"
    ACTIVE = "active", "Active"
    RENEWAL_DUE = "renewal_due", "Renewal due"
    RENEWAL_FAILING = "renewal_failing", "Renewal failing"
    EXPIRED = "expired", "Expired"


# Statuses during which the channel page refreshes itself (something is under way).
STATUSES_IN_PROGRESS = (ChannelStatus.CHECKING, ChannelStatus.ISSUING)
# Statuses that need an operator: they count in the alert banner.
STATUSES_FAILING = (
    ChannelStatus.ISSUANCE_FAILING,
    ChannelStatus.RENEWAL_FAILING,
    ChannelStatus.EXPIRED,
)
STATUS_REASON_MAX_LENGTH = 32


def verification_token_new() -> str:
    """The value a channel's owner publishes to prove control of its hostname."""
    return f"certmgr-{secrets.token_urlsafe(24)}"


class VerificationMethod(models.TextChoices):
    TXT = "txt", "TXT record"
    HTTP = "http", "HTTP token"
    STAFF = "staff", "Staff approval"
    UPGRADE = "upgrade", "In use before proof was required"


class SalesChannel(models.Model):
    class SslMode(models.TextChoices):
        NONE = "none", "No SSL"
        MANAGED = "managed", "Managed by the platform (Let's Encrypt)"
        UPLOADED = "uploaded", "Uploaded certificate"

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.CASCADE, related_name="sales_channels"
    )
    name = models.CharField(max_length=200)
    hostname = models.CharField(max_length=253, unique=True)
    ssl_mode = models.CharField(max_length=10, choices=SslMode.choices, default=SslMode.NONE)
    # The uploaded certificate chosen by an operator (ssl_mode == uploaded).
    certificate = models.ForeignKey(
        "certificates.Certificate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="chosen_by_channels",
    )
    # The certificate deployed to the edge right now; it stays until its successor is in place.
    active_certificate = models.ForeignKey(
        "certificates.Certificate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="active_on_channels",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Apple Pay: serve the institution's domain-association file ("identity proof") at
    # /.well-known/apple-developer-merchantid-domain-association on this hostname. The proof
    # named here, else the institution's latest valid one (selectors.channel_identity_proof).
    apple_pay_enabled = models.BooleanField(default=False)
    apple_identity_proof = models.ForeignKey(
        "certificates.Certificate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="proof_for_channels",
        limit_choices_to={"kind": "apple_identity_proof"},
    )
    # Whether the probe fetched that file through the edge with the right bytes (probe.py);
    # None: not checked (or Apple Pay is off).
    apple_probe_ok = models.BooleanField(null=True, blank=True)
    apple_probe_checked_at = models.DateTimeField(null=True, blank=True)
    apple_probe_failure = models.CharField(
        max_length=PROBE_FAILURE_MAX_LENGTH, choices=ProbeFailure.choices, blank=True
    )

    # What the live probe last saw on the edge for this hostname (see probe.py).
    probe_status = models.CharField(
        max_length=10, choices=ProbeStatus.choices, default=ProbeStatus.UNKNOWN, blank=True
    )
    probe_checked_at = models.DateTimeField(null=True, blank=True)
    probe_fingerprint = models.CharField(max_length=95, blank=True)
    probe_expires_at = models.DateTimeField(null=True, blank=True)
    probe_failure = models.CharField(
        max_length=PROBE_FAILURE_MAX_LENGTH, choices=ProbeFailure.choices, blank=True
    )
    # When the probe last found the active certificate served (probe_status ok), and when the
    # edge files were last written for this channel (edge.py): the channel page shows both.
    probe_verified_at = models.DateTimeField(null=True, blank=True)
    edge_deployed_at = models.DateTimeField(null=True, blank=True)

    # Managed mode (ACME): when the next certificate is due, and how renewal has been going.
    renewal_due_at = models.DateTimeField(null=True, blank=True)
    renewal_failures = models.PositiveIntegerField(default=0)
    renewal_last_attempt_at = models.DateTimeField(null=True, blank=True)
    renewal_next_attempt_at = models.DateTimeField(null=True, blank=True)
    renewal_last_error = models.TextField(blank=True)
    # A worker's claim on the channel's issuance: a token and a lease, taken with a
    # conditional update so that two schedulers or workers never order twice for it.
    renewal_claim = models.CharField(max_length=36, blank=True)
    renewal_claimed_until = models.DateTimeField(null=True, blank=True)
    # The ACME profile its orders ask for (https://datatracker.ietf.org/doc/draft-ietf-acme-
    # profiles/), one the CA's directory lists; blank: settings.ACME_PROFILE.
    acme_profile = models.CharField(max_length=64, blank=True)
    # ACME Renewal Information (RFC 9773, https://www.rfc-editor.org/rfc/rfc9773) of the active
    # certificate: when it was last asked, when to ask again (its Retry-After, bounded), the
    # window it suggested, and when the CA last moved that window earlier than planned.
    ari_checked_at = models.DateTimeField(null=True, blank=True)
    ari_next_check_at = models.DateTimeField(null=True, blank=True)
    ari_window_start = models.DateTimeField(null=True, blank=True)
    ari_window_end = models.DateTimeField(null=True, blank=True)
    ari_window_moved_at = models.DateTimeField(null=True, blank=True)

    # Proof of ownership (README, "Onboarding a hostname"): no ACME order and no Apple Pay file
    # for the hostname until it is verified. Checks back off (verification_next_check_at).
    verification_token = models.CharField(max_length=64, default=verification_token_new)
    hostname_verified_at = models.DateTimeField(null=True, blank=True)
    hostname_verified_by = models.CharField(
        max_length=8, choices=VerificationMethod.choices, blank=True
    )
    verification_checked_at = models.DateTimeField(null=True, blank=True)
    verification_next_check_at = models.DateTimeField(null=True, blank=True)
    verification_attempts = models.PositiveIntegerField(default=0)

    # The one status (saleschannels/status.py): a typed reason and its parameters give the
    # plain words (saleschannels/findings.py); `checks` holds the last findings of each check.
    status = models.CharField(
        max_length=20, choices=ChannelStatus.choices, default=ChannelStatus.NONE
    )
    status_reason = models.CharField(max_length=STATUS_REASON_MAX_LENGTH, blank=True)
    status_params = models.JSONField(default=dict, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_checked_at = models.DateTimeField(null=True, blank=True)
    status_next_attempt_at = models.DateTimeField(null=True, blank=True)
    checks = models.JSONField(default=list, blank=True)
    checks_failures = models.PositiveIntegerField(default=0)

    objects = SalesChannelQuerySet.as_manager()

    class Meta:
        ordering = ["hostname"]
        indexes = [
            models.Index(fields=["probe_status"], name="channel_probe_status"),
            models.Index(fields=["ssl_mode", "renewal_due_at"], name="channel_renewal_due"),
            models.Index(fields=["ssl_mode", "ari_next_check_at"], name="channel_ari_due"),
            models.Index(fields=["renewal_failures"], name="channel_renewal_failures"),
            models.Index(fields=["status"], name="channel_status"),
            models.Index(
                fields=["hostname_verified_at", "verification_next_check_at"],
                name="channel_verification_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.hostname})"

    def get_absolute_url(self) -> str:
        return reverse("channel_detail", args=[self.pk])

    def clean(self) -> None:
        """What the SSL Management and Apple Pay pages check of the certificates a channel
        names, for whatever else edits the row (the admin): its institution's, of the right
        kind. A channel that uses certificates cannot move to another institution."""
        foreign_institution_links_refuse(self)
        kinds = {
            "certificate": ("ssl", "The chosen certificate must be an SSL certificate."),
            "active_certificate": ("ssl", "The active certificate must be an SSL certificate."),
            "apple_identity_proof": (
                "apple_identity_proof",
                "The Apple Pay identity proof must be an identity proof.",
            ),
        }
        for name, (kind, refusal) in kinds.items():
            named = getattr(self, name)
            if named is not None and named.kind != kind:
                raise ValidationError(refusal)

    @property
    def hostname_verified(self) -> bool:
        return self.hostname_verified_at is not None

    @property
    def verification_txt_name(self) -> str:
        """The TXT record that proves control of the hostname."""
        return f"{VERIFICATION_TXT_LABEL}.{self.hostname}"

    @property
    def verification_http_path(self) -> str:
        return f"{VERIFICATION_HTTP_PREFIX}{self.verification_token}"

    @property
    def renewal_failing(self) -> bool:
        """Renewal failed twice or more in a row: an operator should look (alert banner)."""
        return (
            self.ssl_mode == self.SslMode.MANAGED
            and self.renewal_failures >= RENEWAL_FAILURES_ALERT
        )

    @property
    def probe_has_problem(self) -> bool:
        return self.probe_status in PROBE_PROBLEMS

    @property
    def apple_probe_explanation(self) -> str:
        """Why the Apple Pay probe failed, in plain words ("" when it did not)."""
        if not self.apple_probe_failure:
            return ""
        reason = ProbeFailure(self.apple_probe_failure)
        if reason in APPLE_FILE_FAILURES:
            return f"{reason.label}."
        return f"Could not fetch the file: {reason.label[0].lower()}{reason.label[1:]}."

    @property
    def apple_well_known_url(self) -> str:
        """The URL Apple fetches to verify the domain."""
        return f"https://{self.hostname}{APPLE_WELL_KNOWN_PATH}"


# Renewal failures from this many in a row on count in the alert banner.
RENEWAL_FAILURES_ALERT = 2


def channels_needing_action(user) -> SalesChannelQuerySet:
    """The user's channels that count in the alert banner: a bad probe result, or a managed
    renewal that failed twice or more in a row. Both conditions are indexed."""
    return SalesChannel.objects.visible_to(user).filter(
        models.Q(probe_status__in=PROBE_PROBLEMS)
        | models.Q(
            ssl_mode=SalesChannel.SslMode.MANAGED, renewal_failures__gte=RENEWAL_FAILURES_ALERT
        )
    )
