"""The Celery application; settings come from Django's under the CELERY_ prefix.

Celery installs its own log handlers in workers and beat; with LOG_FORMAT=json they get the
JSON formatter of settings.LOGGING, so that every process logs the same JSON lines.
"""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certmgr.settings")

app = Celery("certmgr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format_apply(logger, **kwargs) -> None:
    """Give Celery's handlers (root and task loggers) settings.LOGGING's JSON formatter."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    if settings.LOG_FORMAT != "json":
        return  # Celery's own plain format, like the web processes' plain one
    spec = dict(settings.LOGGING["formatters"]["json"])
    formatter = import_string(spec.pop("()"))(**spec)
    for handler in logger.handlers:
        handler.setFormatter(formatter)
