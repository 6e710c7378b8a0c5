"""Test helpers shared across apps: the cast's password and the real programs tests drive."""

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

PASSWORD = "correct horse battery staple"


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    """A file as a browser sends it in a multipart form."""
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


# A hostname as core/templatetags/hostnames.py shows it: one span per label, <wbr> after each dot.
_HOSTNAME_MARKUP = re.compile(
    r'<span class="(?:hostname(?: hostname-ascii)?|dotted)">'
    r"((?:<span>[^<]*</span>(?:<wbr>)?)+)</span>"
)


def hostnames_unwrapped(html: str) -> str:
    """The HTML with every hostname as plain text again ("shop.acme.test"), so that a test can
    look for it, or make sure it is absent."""
    return _HOSTNAME_MARKUP.sub(lambda match: re.sub(r"</?span>|<wbr>", "", match[1]), html)


def page_html(response) -> str:
    """A page's HTML with its hostnames unwrapped (hostnames_unwrapped)."""
    return hostnames_unwrapped(response.content.decode())


def errors_of(response) -> dict[str, list[str]]:
    """The form errors of a page, field by field."""
    return {field: list(messages) for field, messages in response.context["form"].errors.items()}


def confirm_field(response) -> dict[str, str]:
    """The hidden `confirm` field of a delete's confirmation page, as its form posts it."""
    match = re.search(r'name="confirm" value="([0-9a-f]+)"', response.content.decode())
    assert match, "no confirmation form on the page"
    return {"confirm": match.group(1)}


def delete_confirmed(client, url: str):
    """Delete as a person does: open the confirmation page, then post its form."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return client.post(url, confirm_field(page))


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


# Helpers for the real servers the tests start (nginx, Pebble, Redis, Celery).

LOG_TAIL_LINES = 40


def ports_free(count: int = 1, *, avoid: frozenset[int] | set[int] = frozenset()) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 nobody listens on right now."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in ports and port not in avoid:
            ports.append(port)
    return ports


def port_free() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    return ports_free(1)[0]


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def process_stop(process: subprocess.Popen, *, timeout: float = 10.0) -> None:
    """SIGTERM, SIGKILL after `timeout`, and wait: no zombie, no stray listener."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def file_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, for error messages."""
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(file_text(path).splitlines()[-lines:])


def page_after_redirect(client, response, to: str) -> str:
    """The page a POST redirected to (checked to be `to`), as the browser then shows it."""
    assert response.status_code == 302, response.status_code
    assert response["Location"] == to
    return client.get(response["Location"]).content.decode()
