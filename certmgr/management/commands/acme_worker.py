"""manage.py acme_worker [CELERY WORKER OPTIONS]: the worker for ACME orders (README, "Workers
and concurrency").

An ACME order spends its time waiting: on the CA's answers, its validation of the HTTP-01
challenge, its signing. One process with a thread pool therefore runs many at once: this
starts `celery worker` on the "acme" queue (settings.CELERY_TASK_ROUTES sends issuance there)
with Celery's thread pool of settings.CERTMGR_ACME_CONCURRENCY threads
(https://docs.celeryq.dev/en/stable/userguide/workers.html#concurrency). Each thread has its
own database connection; a channel is still claimed by a conditional update before its order
(acme_client/services.py), so no two threads or processes order for the same channel.

Options after the command go to `celery worker` as they are, e.g. `--loglevel INFO` or
`--hostname acme@%h`; `--concurrency` there overrides the setting.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from certmgr.celery import app

ACME_QUEUE = "acme"


class Command(BaseCommand):
    help = (
        "Run the Celery worker for ACME orders: the acme queue, a pool of"
        " CERTMGR_ACME_CONCURRENCY threads. Any option is passed on to `celery worker`."
    )

    def run_from_argv(self, argv: list[str]) -> None:
        # Every option belongs to `celery worker` (Django's parser would refuse them).
        app.worker_main(worker_argv(argv[2:], concurrency=settings.CERTMGR_ACME_CONCURRENCY))

    def handle(self, *args, **options) -> None:
        app.worker_main(worker_argv([], concurrency=settings.CERTMGR_ACME_CONCURRENCY))


def worker_argv(extra: list[str], *, concurrency: int) -> list[str]:
    """`celery worker`'s arguments: the acme queue on a thread pool, then the caller's own."""
    return [
        "worker",
        "--queues",
        ACME_QUEUE,
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        *extra,
    ]
