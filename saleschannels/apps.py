from django.apps import AppConfig


class SaleschannelsConfig(AppConfig):
    name = "saleschannels"
    verbose_name = "Sales channels"
