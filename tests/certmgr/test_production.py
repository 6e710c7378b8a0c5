"""The production profile, as the README documents it, in processes of its own.

The environment is read from the README's Production section (the ```sh block that sets
CERTMGR_PRODUCTION), with its `<...>` placeholders filled in, so the README and this test
cannot drift apart. Nothing else from the test's own environment leaks in; the one addition is
CERTMGR_VAR_DIR, so that nothing is written into the repository's var/.

- `manage.py check --deploy --fail-level WARNING` passes with it; without the profile it fails,
  and without SECRET_KEY or CERTMGR_ENCRYPTION_KEYS, or with DEBUG on, the process refuses to
  start and names what is wrong.
- A real gunicorn (the server of docker-compose.yml) on that environment, with a SQLite
  database and the embedded broker in a temporary folder: plain HTTP is redirected to HTTPS
  except ACME's and Apple's /.well-known/ paths and /healthz; behind the proxy's
  X-Forwarded-Proto the pages carry HSTS, CSP, frame denial, Referrer-Policy and Secure
  cookies; shop hostnames get no HSTS; WhiteNoise serves the hashed, compressed stylesheet.
"""

import http.client
import os
import re
import secrets
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support import log_tail, port_free, process_stop
from tests.web import server_command

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKOFFICE_HOST = "certmgr.example.com"
SHOP_HOST = "shop.example.test"
CHALLENGE_TOKEN = "token-for-the-production-test"
CHALLENGE_ANSWER = f"{CHALLENGE_TOKEN}.thumbprint"
SERVER_START_TIMEOUT = 90.0
COMMAND_TIMEOUT = 180

PLACEHOLDER_VALUES = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "CERTMGR_ENCRYPTION_KEYS": lambda: Fernet.generate_key().decode(),
}


def readme_production_environment() -> dict[str, str]:
    """The variables of the README's production block, placeholders filled in."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Production\n", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    block = next(block for block in blocks if "CERTMGR_PRODUCTION=true" in block)
    environment = {}
    for line in block.strip().splitlines():
        name, value = line.split("=", 1)
        if re.fullmatch(r"<[^>]*>", value):
            value = PLACEHOLDER_VALUES[name]()
        environment[name] = re.sub(r"<[^>]*>", "placeholder", value)
    return environment


def process_environment(variables: dict[str, str], var_dir: Path) -> dict[str, str]:
    """`variables` plus what any process needs to start; nothing else of this test's own."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "CERTMGR_VAR_DIR": str(var_dir),
        **variables,
    }


def manage(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


def test_the_readme_documents_the_variables_the_profile_requires():
    environment = readme_production_environment()
    assert environment["CERTMGR_PRODUCTION"] == "true"
    for name in ("SECRET_KEY", "CERTMGR_ENCRYPTION_KEYS", "CERTMGR_BACKOFFICE_HOSTS"):
        assert environment[name], name
    assert Fernet(environment["CERTMGR_ENCRYPTION_KEYS"].encode())  # a usable key was filled in


def test_check_deploy_passes_with_the_documented_environment(tmp_path):
    environment = process_environment(readme_production_environment(), tmp_path)
    result = manage("check", "--deploy", "--fail-level", "WARNING", environment=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (1 silenced)." in result.stdout


def test_check_deploy_fails_without_the_production_profile(tmp_path):
    variables = readme_production_environment()
    del variables["CERTMGR_PRODUCTION"]
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        environment=process_environment(variables, tmp_path),
    )
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr, warning


@pytest.mark.parametrize("missing", ["SECRET_KEY", "CERTMGR_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_a_secret(tmp_path, missing):
    variables = readme_production_environment()
    del variables[missing]
    result = manage("check", "--deploy", environment=process_environment(variables, tmp_path))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"CERTMGR_PRODUCTION is on but {missing} is not set" in result.stderr
    # Nothing was generated in its place.
    assert not (tmp_path / "secret_key").exists()
    assert not (tmp_path / "encryption.key").exists()


def test_production_refuses_to_start_in_debug_mode(tmp_path):
    variables = {**readme_production_environment(), "DEBUG": "true"}
    result = manage("check", environment=process_environment(variables, tmp_path))
    assert result.returncode != 0
    assert "CERTMGR_PRODUCTION is on: DEBUG must be off." in result.stderr


# A real gunicorn on the production profile.


SETUP_DATA = f"""
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from acme_client.models import AcmeChallenge
from institutions.models import Institution
from saleschannels.models import SalesChannel

acme = Institution.objects.create(name="Acme Tickets", slug="acme-tickets")
SalesChannel.objects.create(institution=acme, name="Main shop", hostname="{SHOP_HOST}")
AcmeChallenge.objects.create(
    token="{CHALLENGE_TOKEN}",
    key_authorization="{CHALLENGE_ANSWER}",
    hostname="{SHOP_HOST}",
    expires_at=timezone.now() + timedelta(hours=1),
)
get_user_model().objects.create_user(username="alice", password="correct horse battery staple")
"""


@contextmanager
def gunicorn_run(environment: dict[str, str], log_path: Path):
    """gunicorn on a free port of 127.0.0.1, started as docker-compose.yml starts it."""
    port = port_free()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(port, "gunicorn"),
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{log_tail(log_path)}")
            try:
                if request(port, "GET", "/healthz", host="127.0.0.1").status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer:\n{log_tail(log_path)}")
            time.sleep(0.2)
        yield port
    finally:
        process_stop(process)


class Answer:
    def __init__(self, response: http.client.HTTPResponse):
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()


def request(port, method, path, *, host, headers=None, body=None) -> Answer:
    """One request, redirects not followed, with exactly the Host and headers given."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        return Answer(connection.getresponse())
    finally:
        connection.close()


HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("production")
    variables = {
        **readme_production_environment(),
        # A database and broker this test can have: the profile does not depend on them.
        "DATABASE_URL": f"sqlite:///{workdir / 'certmgr.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
    }
    environment = process_environment(variables, workdir)
    for arguments in (
        ("migrate", "--noinput"),
        ("collectstatic", "--noinput"),
        ("shell", "-c", SETUP_DATA),
    ):
        result = manage(*arguments, environment=environment)
        assert result.returncode == 0, result.stdout + result.stderr
    with gunicorn_run(environment, workdir / "gunicorn.log") as port:
        yield port


def test_plain_http_to_the_back_office_is_redirected_to_https(production_server):
    answer = request(production_server, "GET", "/accounts/login/", host=BACKOFFICE_HOST)
    assert answer.status == 301
    assert answer.headers["Location"] == f"https://{BACKOFFICE_HOST}/accounts/login/"


def test_the_acme_challenge_is_answered_over_plain_http(production_server):
    path = f"/.well-known/acme-challenge/{CHALLENGE_TOKEN}"
    answer = request(production_server, "GET", path, host=SHOP_HOST)
    assert answer.status == 200
    assert answer.body == CHALLENGE_ANSWER.encode()


def test_the_apple_pay_path_is_not_redirected(production_server):
    path = "/.well-known/apple-developer-merchantid-domain-association"
    answer = request(production_server, "GET", path, host=SHOP_HOST)
    # Apple Pay is off on this channel: certmgr's own 404, not a redirect.
    assert answer.status == 404
    assert "Location" not in answer.headers


def test_healthz_answers_plain_http_on_the_pods_address(production_server):
    answer = request(production_server, "GET", "/healthz", host="10.1.2.3:8000")
    assert (answer.status, answer.body) == (200, b"ok")


def test_https_pages_carry_the_security_headers(production_server):
    answer = request(
        production_server, "GET", "/accounts/login/", host=BACKOFFICE_HOST, headers=HTTPS
    )
    assert answer.status == 200
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    csrf_cookie = answer.headers["Set-Cookie"]
    assert csrf_cookie.startswith("csrftoken=")
    assert "; Secure" in csrf_cookie
    assert "HttpOnly" in csrf_cookie


def test_the_session_cookie_is_secure(production_server):
    page = request(
        production_server, "GET", "/accounts/login/", host=BACKOFFICE_HOST, headers=HTTPS
    )
    csrf_cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    form_token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1)
    body = (
        f"csrfmiddlewaretoken={form_token.decode()}&username=alice"
        "&password=correct+horse+battery+staple&next=/"
    )
    answer = request(
        production_server,
        "POST",
        "/accounts/login/",
        host=BACKOFFICE_HOST,
        headers={
            **HTTPS,
            "Cookie": csrf_cookie,
            "Origin": f"https://{BACKOFFICE_HOST}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=body,
    )
    assert answer.status == 302, answer.body[:500]
    session_cookie = next(
        value for value in answer.headers.get_all("Set-Cookie") if value.startswith("sessionid=")
    )
    assert "; Secure" in session_cookie
    assert "HttpOnly" in session_cookie


def test_the_proxys_scheme_header_decides_what_is_https(production_server):
    # Documented contract: CERTMGR_BEHIND_PROXY=true trusts X-Forwarded-Proto. A request that
    # says "http" is treated as plain HTTP, however it arrived.
    answer = request(
        production_server,
        "GET",
        "/accounts/login/",
        host=BACKOFFICE_HOST,
        headers={"X-Forwarded-Proto": "http"},
    )
    assert answer.status == 301


def test_shop_hostnames_get_no_hsts(production_server):
    path = f"/.well-known/acme-challenge/{CHALLENGE_TOKEN}"
    answer = request(production_server, "GET", path, host=SHOP_HOST, headers=HTTPS)
    assert answer.status == 200
    assert "Strict-Transport-Security" not in answer.headers


def test_whitenoise_serves_the_hashed_compressed_stylesheet(production_server):
    page = request(
        production_server, "GET", "/accounts/login/", host=BACKOFFICE_HOST, headers=HTTPS
    )
    stylesheet = re.search(rb'href="(/static/certmgr\.[0-9a-f]{12}\.css)"', page.body)
    assert stylesheet, page.body[:1000]
    answer = request(
        production_server,
        "GET",
        stylesheet.group(1).decode(),
        host=BACKOFFICE_HOST,
        headers={**HTTPS, "Accept-Encoding": "gzip"},
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/css")
    assert answer.headers["Content-Encoding"] == "gzip"
    assert "immutable" in answer.headers["Cache-Control"]
