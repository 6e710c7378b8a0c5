from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom of the apps: the audit trail, encryption at rest and its key rotation."""

    name = "core"
    verbose_name = "Audit trail"
