from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Expiry monitoring: findings and digests, the alert banner, the dashboard, /metrics."""

    name = "monitoring"
    verbose_name = "Monitoring"
