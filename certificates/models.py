"""The certificate domain: certificates of every kind, key-and-CSR requests for Apple Pay,
and the expiry thresholds stored with each certificate.

A certificate's status is derived from its expiry and the current time, never stored: see
status_conditions(), which both the list filters and the status badge use, so that what is
counted, filtered and shown always agrees.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When
from django.urls import reverse

from core import encryption
from core.tenancy import foreign_institution_links_refuse
from institutions.models import visible_institution_ids

from . import expiry


class CertificateStatus(models.TextChoices):
    VALID = "valid", "Valid"
    EXPIRING = "expiring", "Expiring"
    CRITICAL = "critical", "Critical"
    EXPIRED = "expired", "Expired"
    NOT_YET_VALID = "not_yet_valid", "Not yet valid"
    UNVERIFIED = "unverified", "Unverified"


def status_conditions(now: datetime) -> list[tuple[str, Q]]:
    """The status rules in order of precedence: the first condition that holds wins, and a
    certificate that meets none is valid.

    An expiry typed by hand ("unverified") only shows as such while the date is far off:
    an expired or critical certificate is reported as expired or critical whatever the source.
    """
    critical = now + timedelta(days=settings.CERTMGR_CRITICAL_DAYS)
    warning = now + timedelta(days=settings.CERTMGR_WARNING_DAYS)
    return [
        (CertificateStatus.EXPIRED, Q(expires_at__lt=now)),
        (CertificateStatus.NOT_YET_VALID, Q(not_before__gt=now)),
        (CertificateStatus.CRITICAL, Q(expires_at__lte=critical)),
        (CertificateStatus.EXPIRING, Q(expires_at__lte=warning)),
        (CertificateStatus.UNVERIFIED, Q(expiry_source="manual")),
    ]


def status_q(status: str, now: datetime) -> Q:
    """A filter selecting exactly the certificates whose status is `status` at `now`."""
    if status not in CertificateStatus.values:
        raise ValueError(f"unknown certificate status {status!r}")
    query = Q()
    for name, condition in status_conditions(now):
        if name == status:
            return query & condition
        query &= ~condition
    return query  # valid: none of the conditions holds


class CertificateQuerySet(models.QuerySet):
    def visible_to(self, user) -> "CertificateQuerySet":
        """Certificates of the institutions the user may read (all of them for staff)."""
        if user.is_authenticated and user.is_staff:
            return self.all()  # no filter at all, so that counts can use the smallest index
        return self.filter(institution__in=visible_institution_ids(user))

    def with_status(self, now: datetime) -> "CertificateQuerySet":
        """Annotate each certificate with its `status` at `now`."""
        whens = [When(condition, then=Value(name)) for name, condition in status_conditions(now)]
        return self.annotate(status=Case(*whens, default=Value(CertificateStatus.VALID.value)))


class Certificate(models.Model):
    class Kind(models.TextChoices):
        SSL = "ssl", "SSL"
        APPLE_MERCHANT_IDENTITY = "apple_merchant_identity", "Apple Pay merchant identity"
        APPLE_PAYMENT_PROCESSING = "apple_payment_processing", "Apple Pay payment processing"
        APPLE_IDENTITY_PROOF = "apple_identity_proof", "Apple Pay identity proof"

    class Source(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        MANAGED = "managed", "Managed (ACME)"

    class ExpirySource(models.TextChoices):
        PARSED = "parsed", "Read from the certificate"
        MANUAL = "manual", "Entered by hand"

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.CASCADE, related_name="certificates"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.SSL)
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UPLOADED)
    # Apple Pay merchant identity and payment processing certificates: the merchant they are
    # for ("merchant.com.example.shop"). One payment processing certificate per merchant is
    # active: a new one `replaces` the previous (services.apple_certificate_store).
    merchant_identifier = models.CharField(max_length=255, blank=True, db_index=True)

    certificate_pem = models.TextField(blank=True)
    chain_pem = models.TextField(blank=True)
    # The file as uploaded, kept when it could not be read as X.509 (manual expiry).
    content = models.BinaryField(blank=True, default=b"")
    # Fernet token of the PKCS#8 PEM key; never rendered, see encryption.py.
    private_key_encrypted = models.TextField(blank=True)

    subject = models.TextField(blank=True)
    common_name = models.CharField(max_length=255, blank=True)
    issuer = models.TextField(blank=True)
    domains = models.JSONField(default=list, blank=True)
    serial_number = models.CharField(max_length=64, blank=True)
    fingerprint_sha256 = models.CharField(max_length=95, blank=True, db_index=True)
    key_type = models.CharField(max_length=16, blank=True)
    key_size = models.PositiveIntegerField(null=True, blank=True)
    key_curve = models.CharField(max_length=16, blank=True)
    signature_hash = models.CharField(max_length=16, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    expires_at = models.DateTimeField()
    expiry_source = models.CharField(
        max_length=10, choices=ExpirySource.choices, default=ExpirySource.PARSED
    )
    replaces = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaced_by"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["expires_at", "pk"]
        # not_before rides along so that the banner's counts read the index alone.
        indexes = [
            models.Index(fields=["expires_at", "not_before"], name="cert_expiry"),
            models.Index(
                fields=["institution", "expires_at", "not_before"], name="cert_institution_expiry"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("certificate_detail", args=[self.pk])

    def clean(self) -> None:
        # The certificate it replaces and the channels using it are its institution's.
        foreign_institution_links_refuse(self)

    @property
    def has_private_key(self) -> bool:
        return bool(self.private_key_encrypted)

    @property
    def is_apple(self) -> bool:
        return self.kind.startswith("apple_")

    @property
    def is_identity_proof(self) -> bool:
        return self.kind == self.Kind.APPLE_IDENTITY_PROOF

    @property
    def is_unverified(self) -> bool:
        return self.expiry_source == self.ExpirySource.MANUAL

    @property
    def key_description(self) -> str:
        if self.key_curve:
            return f"{self.key_type} {self.key_curve}"
        if self.key_size:
            return f"{self.key_type} {self.key_size}"
        return self.key_type

    def private_key_set(self, pem: str | None) -> None:
        """Store the private key encrypted (or clear it); the plaintext is never kept."""
        self.private_key_encrypted = encryption.encrypt(pem.encode()) if pem else ""

    def private_key_pem(self) -> str:
        """The decrypted key, for deployment only: never render or log it."""
        return encryption.decrypt(self.private_key_encrypted).decode()

    def public_bundle_pem(self) -> str:
        """Leaf followed by its intermediates, as served by a TLS server."""
        return self.certificate_pem + self.chain_pem

    def days_left(self, now: datetime) -> int:
        """Days left by the one rule of expiry.py (rounded up; negative once expired)."""
        return expiry.days_left(self.expires_at, now)

    def expiry_words(self, now: datetime) -> str:
        """ "3 days left", "expired 6 days ago" (expiry.py)."""
        return expiry.expiry_words(self.expires_at, now)


class CertificateRequestQuerySet(models.QuerySet):
    def visible_to(self, user) -> "CertificateRequestQuerySet":
        """Requests of the institutions the user may read (all of them for staff)."""
        if user.is_authenticated and user.is_staff:
            return self.all()
        return self.filter(institution__in=visible_institution_ids(user))

    def pending(self) -> "CertificateRequestQuerySet":
        return self.filter(completed_at__isnull=True)


class CertificateRequest(models.Model):
    """A key made by certmgr and the CSR for it, waiting for the certificate Apple issues.

    A request is *pending* until Apple's certificate is uploaded for it: that creates the
    Certificate (with this key) and completes the request, whose own copy of the key is then
    dropped. Kept apart from Certificate because a pending request has no expiry (and
    Certificate.expires_at is what every list, count and alert reads).
    """

    class Kind(models.TextChoices):
        # The kinds Apple issues from a CSR, with Certificate.Kind's values and labels.
        APPLE_MERCHANT_IDENTITY = "apple_merchant_identity", "Apple Pay merchant identity"
        APPLE_PAYMENT_PROCESSING = "apple_payment_processing", "Apple Pay payment processing"

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.CASCADE, related_name="certificate_requests"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # The name the certificate will have.
    name = models.CharField(max_length=200)
    merchant_identifier = models.CharField(max_length=255, db_index=True)
    # Fernet token of the PKCS#8 PEM key, like Certificate's; emptied once completed.
    private_key_encrypted = models.TextField(blank=True)
    csr_pem = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    certificate = models.OneToOneField(
        Certificate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="certificate_request",
    )

    objects = CertificateRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["institution", "created_at"],
                condition=Q(completed_at__isnull=True),
                name="request_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} (CSR for {self.merchant_identifier})"

    def get_absolute_url(self) -> str:
        return reverse("certificate_request_detail", args=[self.pk])

    def clean(self) -> None:
        # The certificate Apple issued for it is its institution's.
        foreign_institution_links_refuse(self)

    @property
    def is_pending(self) -> bool:
        return self.completed_at is None

    def private_key_set(self, pem: str | None) -> None:
        """Store the private key encrypted (or clear it); the plaintext is never kept."""
        self.private_key_encrypted = encryption.encrypt(pem.encode()) if pem else ""

    def private_key_pem(self) -> str:
        """The decrypted key, to pair it with Apple's certificate: never render or log it."""
        return encryption.decrypt(self.private_key_encrypted).decode()


class ExpiryThreshold(models.Model):
    """An instant at which a certificate is to be warned about (thresholds.py), stored when the
    certificate is, so that check_expiry reads the thresholds crossed since its last run as
    one index range and writes nothing to the certificates.

    Thresholds already crossed when the certificate is stored collapse into the newest of
    them, due at once (a certificate uploaded with 5 days left is warned about as "7d"). A
    certificate that is replaced loses its thresholds.
    """

    # No index of its own: the unique key leads with it.
    certificate = models.ForeignKey(
        Certificate, on_delete=models.CASCADE, related_name="expiry_thresholds", db_index=False
    )
    name = models.CharField(max_length=16)
    crossed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["certificate", "name"], name="threshold_once")
        ]
        indexes = [models.Index(fields=["crossed_at"], name="threshold_crossed_at")]

    def __str__(self) -> str:
        return f"{self.name} at {self.crossed_at:%Y-%m-%d %H:%M}"
