"""Test helpers shared across apps: the cast's password and the real programs tests drive."""

import os
import shutil

import pytest

PASSWORD = "correct horse battery staple"

# Daemons such as nginx live in sbin, which is not on every user's PATH.
_EXTRA_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def program_path(name: str) -> str | None:
    """Where a program is installed, or None."""
    return shutil.which(name) or shutil.which(name, path=_EXTRA_PATH)


def require_program(name: str) -> str:
    """The path of a program a test needs; a missing one skips the test, or fails it in CI."""
    path = program_path(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install it; see .ci/run)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
