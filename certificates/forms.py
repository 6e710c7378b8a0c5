"""Forms of the certificate back office.

The upload forms (CertificateUploadForm and its kinds) read the files, bound their size, hand
the bytes to the pure parser (bundle/) and put each of its findings on the field it concerns.
When an SSL certificate cannot be read at all, the form asks for the expiry date by hand
(README, "Using it"). Whenever the form comes back (that question, or a refusal), the files
that passed are kept in `draft` so they need not be chosen again, with what was learned from
them (the parser's result) when all were kept: the next attempt reuses it instead of reading
the files again, unless a file is replaced or a passphrase the kept files asked for is typed.
Apple Pay's certificates are always X.509 from Apple: an unreadable one is the wrong file,
refused; their key type and merchant identifier are checked (apple.py).

The Apple Pay identity proof is not X.509: its form takes the file as it is, with the expiry
date typed by hand. The CSR forms create a key and request, and pair Apple's certificate with
a request's key.
"""

from datetime import UTC, date, datetime, time

from cryptography import x509
from django import forms

from institutions.models import Institution

from . import apple, services
from .bundle import (
    FIELD_CERTIFICATE,
    FIELD_PASSPHRASE,
    FIELD_PRIVATE_KEY,
    KEY_MISMATCH_MESSAGE,
    MAX_FILE_BYTES,
    TOO_LARGE_MESSAGE,
    BundleResult,
    certificate_bundle_parse,
)
from .models import Certificate, CertificateRequest

FILE_FIELDS = ("certificate", "private_key", "chain")
REQUEST_KEY_MISMATCH_MESSAGE = "This certificate was not issued for this request's key."


def _expiry_from_date(day: date, now: datetime) -> tuple[datetime | None, str]:
    """A typed expiry date as midnight UTC, or why it is refused."""
    expires_at = datetime.combine(day, time.min, tzinfo=UTC)
    if expires_at < now:
        return None, "This date is in the past: the certificate has expired."
    return expires_at, ""


def _merchant_identifier_clean(value: str) -> str:
    value = (value or "").strip()
    problem = apple.merchant_identifier_problem(value)
    if problem:
        raise forms.ValidationError(problem)
    return value


class CertificateUploadForm(forms.Form):
    """Certificate, key, chain, passphrase (or a PKCS#12 file) of one kind of certificate."""

    kind: str = Certificate.Kind.SSL
    # Whether a certificate that cannot be read is accepted with an expiry typed by hand.
    allows_manual_expiry = True

    institution = forms.ModelChoiceField(queryset=Institution.objects.none(), empty_label=None)
    name = forms.CharField(max_length=200, help_text="How operators will recognise it.")
    certificate = forms.FileField(
        required=False,
        label="Certificate",
        help_text="Server certificate (.pem, .crt, .cer; PEM or DER), a combined PEM, "
        "or a PKCS#12 file (.p12, .pfx).",
    )
    private_key = forms.FileField(
        required=False, label="Certificate key", help_text="Private key (.key), PEM or DER."
    )
    chain = forms.FileField(
        required=False,
        label="Certificate chain",
        help_text="Intermediate CA certificates, optional.",
    )
    passphrase = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Only for an encrypted key or a PKCS#12 file.",
    )
    expires_at = forms.DateField(
        required=False,
        label="Expiry date",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Needed only when the date cannot be read from the certificate.",
    )

    def __init__(self, *args, user, now: datetime, draft: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now
        self.draft = draft or {}
        self.draft_files: dict = self.draft.get("files", {})
        self.draft_bundle = _draft_bundle(self.draft)
        self.needs_expiry = False
        # The prompt for the expiry date, shown as a question, not an error (README, "Using
        # it"): while it is set the form is not valid, though no field is in error.
        self.expiry_prompt = ""
        self.bundle: BundleResult | None = None
        self.file_bytes: dict[str, bytes] = {}
        self.file_names: dict[str, str] = {}
        self.from_draft: set[str] = set()
        institutions = Institution.objects.managed_by(user)
        self.fields["institution"].queryset = institutions
        if self.certificate_help_text:
            self.fields["certificate"].help_text = self.certificate_help_text
        self.file_help_texts = {field: self.fields[field].help_text for field in FILE_FIELDS}
        self.kept_files: list[tuple[str, str]] = []  # (field label, file name)
        self.kept_files_show(self.draft)

    certificate_help_text = ""

    def kept_files_show(self, draft: dict) -> None:
        """Tell the operator which files are kept from the last attempt (in each field's help
        and in `kept_files`); the other fields get their usual help back."""
        kept = draft.get("files", {})
        self.kept_files = []
        for field in FILE_FIELDS:
            help_text = self.file_help_texts[field]
            if field in kept:
                filename = kept[field]["filename"]
                help_text = (
                    f"Kept from your last attempt: {filename}. Choose a file only to replace it."
                )
                self.kept_files.append((self.fields[field].label, filename))
            # A bound field copies help_text when first built (during validation): set both.
            self.fields[field].help_text = help_text
            self[field].help_text = help_text

    def _file_read(self, field: str) -> bytes | None:
        """The bytes of an uploaded file (or of the kept draft), refusing oversized files."""
        upload = self.cleaned_data.get(field)
        if upload:
            if upload.size > MAX_FILE_BYTES:
                self.add_error(field, TOO_LARGE_MESSAGE)
                return None
            self.file_names[field] = upload.name
            return upload.read()
        if field in self.draft_files:
            self.from_draft.add(field)
            self.file_names[field] = self.draft_files[field]["filename"]
            return self.draft_files[field]["data"]
        return None

    def clean(self):
        cleaned = super().clean()
        for field in FILE_FIELDS:
            data = self._file_read(field)
            if data is not None:
                self.file_bytes[field] = data
        if "certificate" not in self.file_bytes:
            if not self.has_error("certificate"):
                self.add_error("certificate", "Choose the certificate file.")
            return cleaned
        if self.has_error("private_key") or self.has_error("chain"):
            return cleaned

        if self._draft_bundle_applies(cleaned):
            # The kept files were read on the attempt that kept them: not again.
            self.bundle = self.draft_bundle
        else:
            self.bundle = certificate_bundle_parse(
                certificate=self.file_bytes["certificate"],
                private_key=self.file_bytes.get("private_key"),
                chain=self.file_bytes.get("chain"),
                # A kept key was stored decrypted: its passphrase is not needed again.
                passphrase=None
                if "private_key" in self.from_draft and self.draft_bundle_key_kept
                else cleaned.get("passphrase") or None,
                kind=self.kind,
                now=self.now,
            )
        for field, messages in self.bundle.errors.items():
            if field == "certificate" and self.bundle.unreadable and self.allows_manual_expiry:
                continue
            for message in messages:
                self.add_error(field, message)
        if self.bundle.unreadable and self.allows_manual_expiry:
            self._expiry_typed_check(cleaned)
        elif self.bundle.leaf is not None:
            self.leaf_check(cleaned, self.bundle)
        return cleaned

    def is_valid(self) -> bool:
        """Valid when no field is in error and no expiry date is still asked for."""
        return super().is_valid() and not self.expiry_prompt

    @property
    def draft_bundle_key_kept(self) -> bool:
        """Whether the kept key file is the key decrypted on the last attempt."""
        return self.draft_bundle is None or bool(self.draft_bundle.private_key_pem)

    def _draft_bundle_applies(self, cleaned) -> bool:
        """True when every file is the kept one and nothing typed now could change what was
        read from them (a passphrase the kept key asked for)."""
        if self.draft_bundle is None or set(self.file_bytes) != self.from_draft:
            return False
        return not (cleaned.get("passphrase") and FIELD_PASSPHRASE in self.draft_bundle.errors)

    def leaf_check(self, cleaned, bundle: BundleResult) -> None:
        """Checks of a kind on the certificate that was read (none for SSL)."""

    def _expiry_typed_check(self, cleaned) -> None:
        """The certificate could not be read: the expiry date must be typed (README, "Using it")."""
        self.needs_expiry = True
        self.fields["expires_at"].required = True
        expires_on = cleaned.get("expires_at")
        if expires_on is None:
            # Why it could not be read, then what to do: a question to answer, not an error.
            reasons = " ".join(self.bundle.errors.get("certificate", []))
            self.expiry_prompt = (f"{reasons} " if reasons else "") + (
                "The expiry date could not be read from the certificate: enter it. "
                "The certificate will be shown as unverified."
            )
            self.fields["expires_at"].widget.attrs["aria-describedby"] = "id_expires_at_prompt"
            return
        expires_at, problem = _expiry_from_date(expires_on, self.now)
        if problem:
            self.add_error("expires_at", problem)
            return
        cleaned["expires_at"] = expires_at

    def draft_for_retry(self) -> dict:
        """The files to keep when the form is shown again (README, "Using it"): those that
        passed (no error on their field; the certificate whose expiry date is asked for
        included), so that only the refused ones are chosen again. With what the parser
        found in them (``bundle``) when every file read is kept, so that they are not read
        again; otherwise the next attempt reads them again with the new files.

        An encrypted key is kept decrypted (the view stores the draft encrypted at rest), so
        the passphrase need not be typed again.
        """
        # An unreadable certificate whose expiry date is asked for is not in error (the
        # prompt), so it is kept.
        kept = [field for field in self.file_bytes if not self.has_error(field)]
        files = {}
        for field in kept:
            data = self.file_bytes[field]
            if field == "private_key" and self.bundle and self.bundle.private_key_pem:
                data = self.bundle.private_key_pem.encode()
            files[field] = {"filename": self.file_names[field], "data": data}
        everything = set(kept) == set(self.file_bytes)
        bundle = self.bundle.as_dict() if self.bundle and everything else None
        return {"files": files, "bundle": bundle}

    def save(self, *, actor) -> Certificate:
        """Store what the form checked (an SSL certificate; with the typed expiry when it
        could not be read), for the page and the API alike."""
        unreadable = self.bundle.unreadable
        return services.certificate_upload(
            institution=self.cleaned_data["institution"],
            name=self.cleaned_data["name"],
            kind=self.kind,
            bundle=self.bundle,
            actor=actor,
            expires_at=self.cleaned_data["expires_at"] if unreadable else None,
            content=self.file_bytes["certificate"] if unreadable else b"",
        )


def _draft_bundle(draft: dict) -> BundleResult | None:
    """What was read from the kept files, None when the draft does not say (or is damaged)."""
    values = draft.get("bundle")
    if not values:
        return None
    try:
        return BundleResult.from_dict(values)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


class SslUploadForm(CertificateUploadForm):
    kind = Certificate.Kind.SSL


class AppleCertificateUploadForm(CertificateUploadForm):
    """An Apple Pay merchant identity or payment processing certificate that exists already:
    Apple's .cer with its key, or a .p12 exported from Keychain Access with its password."""

    allows_manual_expiry = False

    merchant_identifier = forms.CharField(
        required=False,
        max_length=apple.MERCHANT_IDENTIFIER_MAX_LENGTH,
        help_text="e.g. merchant.com.example.shop; read from the certificate when Apple "
        "named it there.",
    )
    field_order = [
        "institution",
        "name",
        "merchant_identifier",
        "certificate",
        "private_key",
        "chain",
        "passphrase",
    ]

    certificate_help_text = (
        "The .cer Apple issued (DER or PEM), or a .p12 exported from Keychain Access with its key."
    )

    def __init__(self, *args, kind: str, **kwargs):
        if kind not in apple.KEY_REQUIREMENTS:
            raise ValueError(f"not an Apple Pay certificate kind: {kind!r}")
        self.kind = kind
        super().__init__(*args, **kwargs)
        del self.fields["expires_at"]

    def clean_merchant_identifier(self) -> str:
        value = (self.cleaned_data.get("merchant_identifier") or "").strip()
        if value:
            problem = apple.merchant_identifier_problem(value)
            if problem:
                raise forms.ValidationError(problem)
        return value

    def leaf_check(self, cleaned, bundle: BundleResult) -> None:
        """The key type Apple requires for the kind, and the merchant the certificate names."""
        problem = apple.key_requirement_problem(self.kind, bundle.leaf.key_description)
        if problem:
            self.add_error("certificate", problem)
        leaf = x509.load_pem_x509_certificate(bundle.certificate_pem.encode("ascii"))
        # Accepted, with a warning stored with it, when Apple did not issue it.
        issuer_warning = apple.issuer_not_apple_warning(self.kind, leaf)
        if issuer_warning:
            bundle.warning_add(issuer_warning)
        named = apple.certificate_merchant_identifier(leaf)
        if self.has_error("merchant_identifier"):
            return
        typed = cleaned.get("merchant_identifier", "")
        if typed and named and typed != named:
            self.add_error(
                "merchant_identifier",
                f"The certificate was issued for {named}, not for {typed}.",
            )
        elif not typed and not named:
            self.add_error(
                "merchant_identifier",
                "The certificate does not name its merchant identifier: enter it.",
            )
        else:
            cleaned["merchant_identifier"] = typed or named

    def save(self, *, actor) -> Certificate:
        return services.apple_certificate_store(
            institution=self.cleaned_data["institution"],
            name=self.cleaned_data["name"],
            kind=self.kind,
            merchant_identifier=self.cleaned_data["merchant_identifier"],
            bundle=self.bundle,
            actor=actor,
            now=self.now,
        )


class IdentityProofUploadForm(forms.Form):
    """Apple Pay's domain-association file: stored byte for byte, expiry typed by hand."""

    institution = forms.ModelChoiceField(queryset=Institution.objects.none(), empty_label=None)
    name = forms.CharField(max_length=200, help_text="How operators will recognise it.")
    file = forms.FileField(
        label="Domain-association file",
        help_text="apple-developer-merchantid-domain-association, as Apple or your payment "
        "provider gave it; it is served exactly as uploaded.",
    )
    expires_at = forms.DateField(
        label="Expiry date",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The file does not say when it stops being valid: enter the date you were "
        "given (it will be shown as unverified).",
    )

    def __init__(self, *args, user, now: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now
        self.content = b""
        self.fields["institution"].queryset = Institution.objects.managed_by(user)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                "The file is larger than 64 KiB; a domain-association file is a few KiB."
            )
        content = upload.read()
        problem = apple.identity_proof_problem(content)
        if problem:
            raise forms.ValidationError(problem)
        self.content = content
        return upload

    def clean_expires_at(self) -> datetime:
        expires_at, problem = _expiry_from_date(self.cleaned_data["expires_at"], self.now)
        if problem:
            raise forms.ValidationError(problem.replace("the certificate", "the file"))
        return expires_at

    def save(self, *, actor) -> Certificate:
        return services.identity_proof_upload(
            institution=self.cleaned_data["institution"],
            name=self.cleaned_data["name"],
            content=self.content,
            expires_at=self.cleaned_data["expires_at"],
            actor=actor,
        )


class CertificateRequestForm(forms.Form):
    """Let certmgr create the key and the CSR Apple asks for."""

    institution = forms.ModelChoiceField(queryset=Institution.objects.none(), empty_label=None)
    kind = forms.ChoiceField(
        label="Type",
        choices=CertificateRequest.Kind.choices,
        widget=forms.RadioSelect,
        help_text="Merchant identity: an RSA 2048-bit key. Payment processing: an EC P-256 key.",
    )
    merchant_identifier = forms.CharField(
        max_length=apple.MERCHANT_IDENTIFIER_MAX_LENGTH,
        help_text="As registered in your Apple Developer account, e.g. merchant.com.example.shop.",
    )
    name = forms.CharField(
        max_length=200,
        required=False,
        help_text="How operators will recognise the certificate; by default the merchant "
        "identifier and the type.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["institution"].queryset = Institution.objects.managed_by(user)

    def clean_merchant_identifier(self) -> str:
        return _merchant_identifier_clean(self.cleaned_data.get("merchant_identifier"))

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("name") and cleaned.get("merchant_identifier") and cleaned.get("kind"):
            label = CertificateRequest.Kind(cleaned["kind"]).label.removeprefix("Apple Pay ")
            cleaned["name"] = f"{cleaned['merchant_identifier']} ({label})"
        return cleaned

    def save(self, *, actor) -> CertificateRequest:
        return services.certificate_request_create(
            institution=self.cleaned_data["institution"],
            kind=self.cleaned_data["kind"],
            merchant_identifier=self.cleaned_data["merchant_identifier"],
            name=self.cleaned_data["name"],
            actor=actor,
        )


class CertificateRequestCompleteForm(forms.Form):
    """The certificate Apple returned for a request: it must be for the request's key."""

    certificate = forms.FileField(
        label="Certificate from Apple",
        help_text="The .cer file Apple's portal gave you for this CSR (DER or PEM).",
    )

    def __init__(self, *args, request: CertificateRequest, now: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        self.certificate_request = request
        self.now = now
        self.bundle: BundleResult | None = None

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("certificate")
        if not upload:
            return cleaned
        if upload.size > MAX_FILE_BYTES:
            self.add_error("certificate", TOO_LARGE_MESSAGE)
            return cleaned
        request = self.certificate_request
        if not request.private_key_encrypted:
            self.add_error("certificate", "This request has no key any more.")
            return cleaned
        bundle = certificate_bundle_parse(
            certificate=upload.read(),
            private_key=request.private_key_pem().encode("ascii"),
            kind=request.kind,
            now=self.now,
        )
        for field, messages in bundle.errors.items():
            for message in messages:
                if field == FIELD_PRIVATE_KEY and message == KEY_MISMATCH_MESSAGE:
                    message = REQUEST_KEY_MISMATCH_MESSAGE
                elif field != FIELD_CERTIFICATE:
                    # Anything else concerns the one file uploaded here (a .p12 with another
                    # key, a password-protected file...).
                    message = f"{message} Upload the .cer Apple issued for this request."
                self.add_error("certificate", message)
        if bundle.leaf is not None and not self.has_error("certificate"):
            leaf = x509.load_pem_x509_certificate(bundle.certificate_pem.encode("ascii"))
            issuer_warning = apple.issuer_not_apple_warning(request.kind, leaf)
            if issuer_warning:
                bundle.warning_add(issuer_warning)
            named = apple.certificate_merchant_identifier(leaf)
            if named and named != request.merchant_identifier:
                self.add_error(
                    "certificate",
                    f"Apple issued this certificate for {named}, but this request is for "
                    f"{request.merchant_identifier}.",
                )
        self.bundle = bundle
        return cleaned
