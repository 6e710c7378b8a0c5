from django.apps import AppConfig


class CertificatesConfig(AppConfig):
    """The certificate domain: uploads and their checks, the inventory, Apple Pay files."""

    name = "certificates"
    verbose_name = "Certificates"
    # Read by core.rotation (manage.py rotate_encryption_keys).
    encrypted_columns = (
        ("Certificate", "private_key_encrypted"),
        ("CertificateRequest", "private_key_encrypted"),
    )
    # The files of an upload waiting for its expiry date (views.UPLOAD_DRAFT_SESSION_KEY).
    encrypted_session_keys = ("certificate_upload_draft",)
