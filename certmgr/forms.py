"""Forms of the certificate back office.

The upload form reads the files, bounds their size, hands the bytes to the pure parser
(bundle.py) and puts each of its findings on the field it concerns. When the certificate cannot
be read at all, the form asks for the expiry date by hand (the seed's rule) and the files the
operator already chose are kept in `draft` so they need not be chosen again.
"""

from datetime import UTC, datetime, time

from django import forms

from institutions.models import Institution

from .bundle import MAX_FILE_BYTES, BundleResult, certificate_bundle_parse
from .models import Certificate

FILE_FIELDS = ("certificate", "private_key", "chain")


class SslUploadForm(forms.Form):
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
        self.needs_expiry = False
        self.bundle: BundleResult | None = None
        self.file_bytes: dict[str, bytes] = {}
        self.file_names: dict[str, str] = {}
        self.from_draft: set[str] = set()
        institutions = Institution.objects.managed_by(user)
        self.fields["institution"].queryset = institutions
        self.kept_files_show(self.draft)

    def kept_files_show(self, draft: dict) -> None:
        """Tell the operator which files are kept from the last attempt."""
        for field, item in draft.items():
            help_text = (
                f"Kept from your last attempt: {item['filename']}. "
                "Choose a file only to replace it."
            )
            # A bound field copies help_text when first built (during validation): set both.
            self.fields[field].help_text = help_text
            self[field].help_text = help_text

    def _file_read(self, field: str) -> bytes | None:
        """The bytes of an uploaded file (or of the kept draft), refusing oversized files."""
        upload = self.cleaned_data.get(field)
        if upload:
            if upload.size > MAX_FILE_BYTES:
                self.add_error(
                    field, "The file is larger than 64 KiB; a certificate file is a few KiB."
                )
                return None
            self.file_names[field] = upload.name
            return upload.read()
        if field in self.draft:
            self.from_draft.add(field)
            self.file_names[field] = self.draft[field]["filename"]
            return self.draft[field]["data"]
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

        self.bundle = certificate_bundle_parse(
            certificate=self.file_bytes["certificate"],
            private_key=self.file_bytes.get("private_key"),
            chain=self.file_bytes.get("chain"),
            # A kept key was stored decrypted: its passphrase is not needed again.
            passphrase=None
            if "private_key" in self.from_draft
            else cleaned.get("passphrase") or None,
            kind=Certificate.Kind.SSL,
            now=self.now,
        )
        for field, messages in self.bundle.errors.items():
            if field == "certificate" and self.bundle.unreadable:
                continue
            for message in messages:
                self.add_error(field, message)
        if self.bundle.unreadable:
            self._expiry_typed_check(cleaned)
        return cleaned

    def _expiry_typed_check(self, cleaned) -> None:
        """The certificate could not be read: the expiry date must be typed (seed's rule)."""
        self.needs_expiry = True
        self.fields["expires_at"].required = True
        expires_on = cleaned.get("expires_at")
        if expires_on is None:
            for message in self.bundle.errors.get("certificate", []):
                self.add_error("certificate", message)
            if not self.has_error("expires_at"):
                self.add_error(
                    "expires_at",
                    "The expiry date could not be read from the certificate: enter it. "
                    "The certificate will be shown as unverified.",
                )
            return
        expires_at = datetime.combine(expires_on, time.min, tzinfo=UTC)
        if expires_at < self.now:
            self.add_error("expires_at", "This date is in the past: the certificate has expired.")
            return
        cleaned["expires_at"] = expires_at

    def draft_for_retry(self) -> dict:
        """The files to keep when the form is shown again to ask for the expiry date.

        An encrypted key is kept decrypted (the view stores the draft encrypted at rest), so
        the passphrase need not be typed again.
        """
        draft = {}
        for field, data in self.file_bytes.items():
            if field == "private_key" and self.bundle and self.bundle.private_key_pem:
                data = self.bundle.private_key_pem.encode()
            draft[field] = {"filename": self.file_names[field], "data": data}
        return draft
