"""Forms of the sales-channel pages."""

from django import forms
from django.conf import settings

from certificates.models import Certificate
from certificates.selectors import identity_proofs_valid
from institutions.models import Institution

from . import services
from .hostnames import HostnameError, hostname_normalize, hostname_reserved
from .models import SalesChannel
from .selectors import certificate_unusable_reason, channel_certificate_choices
from .services import HOSTNAME_TAKEN


def hostname_allowed(value: str) -> str:
    """The stored form of a hostname a channel may have (hostnames.hostname_normalize), not
    one of the platform's own hosts or reserved domains (read at each call); else
    HostnameError in plain words. The channel form and the CSV import (imports.py) both check
    with it; whether another channel holds the name is theirs to ask."""
    hostname = hostname_normalize(value)
    reserved = hostname_reserved(
        hostname, [*settings.CERTMGR_BACKOFFICE_HOSTS, *settings.CERTMGR_RESERVED_DOMAINS]
    )
    if reserved is not None:
        raise HostnameError(
            f"{hostname} is reserved for the platform ({reserved} and the names under it): "
            "choose the shop's own hostname."
        )
    return hostname


class ChannelForm(forms.Form):
    institution = forms.ModelChoiceField(queryset=Institution.objects.none(), empty_label=None)
    name = forms.CharField(max_length=200)
    hostname = forms.CharField(
        max_length=260, help_text="The shop's own hostname, e.g. tickets.example.com."
    )

    def __init__(self, *args, user, channel: SalesChannel | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        self.fields["institution"].queryset = Institution.objects.managed_by(user)
        if channel is not None:
            # A channel stays in its institution; only name and hostname change.
            del self.fields["institution"]

    def clean_hostname(self) -> str:
        try:
            hostname = hostname_allowed(self.cleaned_data["hostname"])
        except HostnameError as error:
            raise forms.ValidationError(str(error)) from None
        taken = SalesChannel.objects.filter(hostname=hostname)
        if self.channel is not None:
            taken = taken.exclude(pk=self.channel.pk)
        # A fast answer only: two requests can both pass it, and the service's insert is what
        # decides (services.HostnameTaken).
        if taken.exists():
            raise forms.ValidationError(HOSTNAME_TAKEN)
        return hostname

    def save(self, *, actor) -> SalesChannel:
        """Create the channel, or change the one edited (services.HostnameTaken when another
        channel took the hostname meanwhile; DeploymentError when its edge files could not
        be moved), for the page and the API alike."""
        if self.channel is None:
            return services.channel_create(
                institution=self.cleaned_data["institution"],
                name=self.cleaned_data["name"],
                hostname=self.cleaned_data["hostname"],
                actor=actor,
            )
        return services.channel_update(
            channel=self.channel,
            name=self.cleaned_data["name"],
            hostname=self.cleaned_data["hostname"],
            actor=actor,
        )


class ChannelSslForm(forms.Form):
    """SSL Management: managed by the platform, or a previously uploaded certificate.

    For a managed channel, the ACME profile among `profiles`, those the CA's directory lists
    (name -> description; None when the directory could not be read, then only the channel's
    current profile or the default are accepted). Blank: the platform's default (ACME_PROFILE).
    """

    mode = forms.ChoiceField(choices=SalesChannel.SslMode.choices, widget=forms.RadioSelect)
    certificate = forms.IntegerField(required=False, widget=forms.RadioSelect)
    acme_profile = forms.CharField(required=False, max_length=64)

    def __init__(
        self, *args, channel: SalesChannel, now, profiles: dict[str, str] | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.channel = channel
        self.now = now
        self.profiles = profiles
        self.choices = channel_certificate_choices(channel, now)
        self.fields["certificate"].widget.choices = [
            (certificate.pk, certificate.name) for certificate in self.choices
        ]

    def clean_acme_profile(self) -> str:
        profile = self.cleaned_data.get("acme_profile", "").strip()
        if self.data.get("mode") != SalesChannel.SslMode.MANAGED:
            return self.channel.acme_profile  # only a managed channel orders; kept as it is
        if not profile or profile in (self.profiles or {}):
            return profile
        if self.profiles is None and profile == self.channel.acme_profile:
            return profile  # the CA could not be asked: what was chosen before stays
        if self.profiles is None:
            raise forms.ValidationError(
                "The CA's profiles could not be read just now: try again in a minute."
            )
        if not self.profiles:
            raise forms.ValidationError(
                f"The CA offers no choice of profile: {profile!r} cannot be asked for."
            )
        raise forms.ValidationError(
            f"The CA does not offer the profile {profile!r}: choose one of "
            + ", ".join(sorted(self.profiles))
            + "."
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("mode") != SalesChannel.SslMode.UPLOADED:
            cleaned["certificate"] = None
            return cleaned
        certificate_id = cleaned.get("certificate")
        if certificate_id is None:
            if not self.has_error("certificate"):
                self.add_error("certificate", "Choose the uploaded certificate to use.")
            return cleaned
        # Looked up among this institution's certificates only: another institution's id is
        # reported exactly like an id that does not exist.
        certificate = Certificate.objects.filter(
            pk=certificate_id, institution_id=self.channel.institution_id
        ).first()
        if certificate is None:
            self.add_error("certificate", "There is no such certificate in this institution.")
            return cleaned
        reason = certificate_unusable_reason(certificate, self.channel, self.now)
        if reason:
            self.add_error("certificate", reason)
            return cleaned
        cleaned["certificate"] = certificate
        return cleaned


class IdentityProofChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.name} (expires {obj.expires_at:%Y-%m-%d})"


class ChannelApplePayForm(forms.Form):
    """Apple Pay on a channel: serve the institution's identity proof on its hostname."""

    apple_pay_enabled = forms.BooleanField(
        required=False,
        label="Enable Apple Pay on this hostname",
        help_text="Serves the identity proof where Apple looks for it.",
    )
    apple_identity_proof = IdentityProofChoiceField(
        queryset=Certificate.objects.none(),
        required=False,
        label="Identity proof",
        empty_label="The institution's latest valid proof",
        help_text="Name one only when this shop belongs to another merchant or payment "
        "provider than the institution's latest proof.",
    )

    def __init__(self, *args, channel: SalesChannel, now, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        self.now = now
        # The institution's identity proofs only: another institution's id is "not a choice".
        self.fields["apple_identity_proof"].queryset = (
            Certificate.objects.filter(
                institution_id=channel.institution_id,
                kind=Certificate.Kind.APPLE_IDENTITY_PROOF,
            )
            .defer("content")
            .order_by("-created_at", "-pk")
        )

    @property
    def has_identity_proofs(self) -> bool:
        """Whether the institution has any identity proof: the page offers to upload one only
        when it has none."""
        return self.fields["apple_identity_proof"].queryset.exists()

    def clean(self):
        cleaned = super().clean()
        proof = cleaned.get("apple_identity_proof")
        if proof is not None and proof.expires_at <= self.now:
            self.add_error(
                "apple_identity_proof",
                f"This identity proof expired on {proof.expires_at:%Y-%m-%d}: Apple would "
                "reject it. Upload the new file and choose it.",
            )
        elif (
            cleaned.get("apple_pay_enabled")
            and proof is None
            and not identity_proofs_valid(self.channel.institution_id, self.now).exists()
        ):
            self.add_error(
                "apple_pay_enabled",
                f"{self.channel.institution.name} has no valid Apple Pay identity proof: "
                "upload the domain-association file first (Certificates → New certificate "
                "→ Apple Pay identity proof).",
            )
        return cleaned
