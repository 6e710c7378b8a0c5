from django.apps import AppConfig


class AcmeClientConfig(AppConfig):
    name = "acme_client"
    verbose_name = "ACME client"
    # Read by core.rotation (manage.py rotate_encryption_keys).
    encrypted_columns = (("AcmeAccount", "key_encrypted"),)
