"""The console is quiet by default: django-axes' INFO lines and kombu's "No hostname was
supplied" warning stay out unless CERTMGR_LOG_VERBOSE is on (README, "Configuration").

Each case configures logging from settings.LOGGING in a fresh process with the environment
given, as the web server and the workers do, and logs through the real loggers.
"""

import os
import subprocess
import sys

from tests.celery_worker import REPO_ROOT

PROGRAM = """
import logging
import django
django.setup()
logging.getLogger("axes.apps").info("AXES: BEGIN version 8, blocking by username")
logging.getLogger("axes.handlers.database").warning("AXES: Locked out user alice")
from kombu import Connection
Connection("filesystem://").info()  # the warning the web process logged for every task
logging.getLogger("certmgr.test").info("certmgr event")
logging.getLogger("kombu.connection").warning("Broker connection lost")
"""


def _console(**extra: str) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CERTMGR_LOG", "LOG_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="certmgr.settings", **extra)
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr


def test_by_default_the_libraries_chatter_is_left_out():
    console = _console()
    assert "AXES: BEGIN" not in console
    assert "No hostname was supplied" not in console


def test_by_default_what_an_operator_needs_is_still_logged():
    console = _console()
    assert "certmgr event" in console
    assert "AXES: Locked out user alice" in console
    assert "Broker connection lost" in console


def test_verbose_logs_the_libraries_chatter_too():
    console = _console(CERTMGR_LOG_VERBOSE="true")
    assert "AXES: BEGIN" in console
    assert "No hostname was supplied" in console
    assert "certmgr event" in console
