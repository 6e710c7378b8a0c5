from django.apps import AppConfig


class CertmgrConfig(AppConfig):
    name = "certmgr"
    verbose_name = "Certificates"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
