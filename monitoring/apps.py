from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Expiry monitoring: findings and digests, the alert banner, the dashboard, /metrics, and
    the webhook event of each change of a channel's status (status_events.py)."""

    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Imported here: models are ready only now (Django's AppConfig.ready).
        from saleschannels.status import channel_status_changed

        from .status_events import channel_status_changed_receive

        channel_status_changed.connect(
            channel_status_changed_receive, dispatch_uid="monitoring.channel_status_event"
        )
