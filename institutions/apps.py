from django.apps import AppConfig


class InstitutionsConfig(AppConfig):
    name = "institutions"
    verbose_name = "Institutions"
    # Fernet tokens (core/encryption.py), re-encrypted by `manage.py rotate_encryption_keys`.
    encrypted_columns = (
        ("Institution", "webhook_secret_encrypted"),
        ("Institution", "webhook_secret_previous_encrypted"),
    )
