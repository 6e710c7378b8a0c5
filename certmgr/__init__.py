"""certmgr: the project package (settings, urls, celery, wsgi) and the certificate domain."""

from .celery import app as celery_app

__all__ = ("celery_app",)
