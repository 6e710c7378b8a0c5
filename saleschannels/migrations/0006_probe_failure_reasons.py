# The probe records why it failed as a typed reason (ProbeFailure) instead of free text, which
# carried remote details (a redirect's Location, raw exception text) onto the channel pages.
# Existing rows: a recorded free-text error becomes the generic reason, except the two Apple Pay
# texts that named a missing proof, which have reasons of their own; the old texts are dropped.
# Backwards, each reason's plain words become the text.

from django.db import migrations, models

GENERIC = "other"
APPLE_TEXTS = {
    "No valid identity proof to serve: the one chosen": "proof_expired",
    "No valid identity proof to serve: upload": "no_proof",
}
LABELS = {
    "internal_address": (
        "Not checked: the hostname resolves to an internal (non-public) address, and the probe "
        "connects only to public ones"
    ),
    "dns": "The hostname does not resolve (DNS)",
    "refused": "Connection refused: nothing listens on the HTTPS port",
    "timeout": "No answer within the probe's time limit",
    "closed": "The server closed the connection during the TLS handshake",
    "network": "The server could not be reached (network error)",
    "no_certificate": "The server has no usable certificate for this name",
    "not_tls": "The HTTPS port does not speak TLS (plain HTTP?)",
    "old_tls": "The server only offers an outdated TLS version",
    "handshake": "The TLS handshake failed",
    "no_peer_certificate": "The server sent no certificate",
    "http_invalid": "No valid HTTP answer",
    "no_proof": (
        "No valid identity proof to serve: upload the institution's domain-association file"
    ),
    "proof_expired": (
        "No valid identity proof to serve: the one chosen for this channel has expired"
    ),
    "redirect": "The URL answers with a redirect: Apple does not follow redirects",
    "file_missing": "The URL answers 404 Not Found instead of the file",
    "http_error": "The URL answers with an HTTP error instead of the file",
    "other_content": "The URL serves other content than the identity proof",
    "other": "The check failed (the details are in the platform's log)",
}
CHOICES = [("", "—"), *LABELS.items()]


def _apple_reason(text: str) -> str:
    for prefix, reason in APPLE_TEXTS.items():
        if text.startswith(prefix):
            return reason
    return GENERIC


def _foreign_keys_checked_at_once(schema_editor, immediate: bool) -> None:
    # PostgreSQL defers the foreign-key checks of updated rows to the commit, and refuses the
    # ALTER TABLE that follows in this migration while they are pending: check them at once.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"SET CONSTRAINTS ALL {'IMMEDIATE' if immediate else 'DEFERRED'}")


def texts_to_reasons(apps, schema_editor):
    SalesChannel = apps.get_model("saleschannels", "SalesChannel")
    _foreign_keys_checked_at_once(schema_editor, True)
    SalesChannel.objects.exclude(probe_error="").update(probe_failure=GENERIC)
    failed_apple = SalesChannel.objects.exclude(apple_probe_error="")
    for pk, text in list(failed_apple.values_list("pk", "apple_probe_error")):
        SalesChannel.objects.filter(pk=pk).update(apple_probe_failure=_apple_reason(text))
    _foreign_keys_checked_at_once(schema_editor, False)


def reasons_to_texts(apps, schema_editor):
    SalesChannel = apps.get_model("saleschannels", "SalesChannel")
    _foreign_keys_checked_at_once(schema_editor, True)
    for reason, label in LABELS.items():
        SalesChannel.objects.filter(probe_failure=reason).update(probe_error=f"{label}.")
        SalesChannel.objects.filter(apple_probe_failure=reason).update(
            apple_probe_error=f"{label}."
        )
    _foreign_keys_checked_at_once(schema_editor, False)


class Migration(migrations.Migration):

    dependencies = [
        ('saleschannels', '0005_certificates_app'),
    ]

    operations = [
        migrations.AddField(
            model_name='saleschannel',
            name='probe_failure',
            field=models.CharField(blank=True, choices=CHOICES, max_length=24),
        ),
        migrations.AddField(
            model_name='saleschannel',
            name='apple_probe_failure',
            field=models.CharField(blank=True, choices=CHOICES, max_length=24),
        ),
        migrations.RunPython(texts_to_reasons, reasons_to_texts, elidable=False),
        migrations.RemoveField(model_name='saleschannel', name='probe_error'),
        migrations.RemoveField(model_name='saleschannel', name='apple_probe_error'),
    ]
