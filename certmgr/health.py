"""`GET /healthz`: can this web process serve? For the orchestrator's probes and the
docker-compose healthcheck.

200 `ok` when the database answers a trivial query and the Celery broker accepts a connection
(the very connection Celery sends tasks through: the app's broker URL and transport options);
503 `failing` otherwise. Plain text, and nothing more to any caller: what failed, and why, goes
to the log (logger `certmgr.health`), never into the answer.

It answers on any Host (an orchestrator probes by pod address, which is no back-office host:
saleschannels.middleware lets the path through before routing), over plain HTTP
(SECURE_REDIRECT_EXEMPT in the production profile), without login, and is never cached. Each
check is bounded: the broker gets one try with BROKER_TIMEOUT seconds to connect and answer.
"""

import logging

from django.db import connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .celery import app as celery_app

logger = logging.getLogger(__name__)

BROKER_TIMEOUT = 3.0


def database_problem() -> str | None:
    """Why the default database cannot answer `SELECT 1`, or None."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure means "failing"; the reason goes to the log
        return f"database: {type(error).__name__}: {error}"
    return None


def broker_problem() -> str | None:
    """Why the Celery broker cannot be connected to within BROKER_TIMEOUT, or None."""
    try:
        with celery_app.connection_for_write(
            connect_timeout=BROKER_TIMEOUT,
            # Redis: a server that accepts the connection but never answers must not hang us.
            transport_options={"socket_timeout": BROKER_TIMEOUT},
        ) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
    except Exception as error:  # as above
        return f"broker: {type(error).__name__}: {error}"
    return None


@never_cache
@require_safe
def healthz(request):
    problems = [problem for problem in (database_problem(), broker_problem()) if problem]
    if problems:
        logger.error("Health check failing: %s", "; ".join(problems))
        return HttpResponse("failing", status=503, content_type="text/plain; charset=utf-8")
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")
