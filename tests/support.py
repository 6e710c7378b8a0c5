"""Test helpers shared across apps: the cast's password and the real programs tests drive."""

import os
import shutil

import pytest

PASSWORD = "correct horse battery staple"


def require_program(name: str) -> str:
    """The path of a program a test needs; a missing one skips the test, or fails it in CI."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install it; see .ci/run)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
