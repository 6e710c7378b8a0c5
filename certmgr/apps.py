from django.apps import AppConfig


class CertmgrConfig(AppConfig):
    name = "certmgr"
    verbose_name = "Certificates"
