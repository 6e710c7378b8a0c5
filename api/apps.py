from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Automation API"

    def ready(self) -> None:
        # The token's security scheme in the OpenAPI schema (drf-spectacular extensions
        # register when imported).
        from . import schema  # noqa: F401
