from django.apps import AppConfig


class CertmgrConfig(AppConfig):
    """The project package. As an app it holds no models: its migrations are the history of
    the tables that moved to core, certificates and monitoring (the last one hands them over),
    and it brings the project's system checks and `manage.py seed_demo`."""

    name = "certmgr"
    verbose_name = "certmgr"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
