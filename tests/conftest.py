"""Shared fixtures: the named cast, generated PKI material, and real-program checks.

The cast (after healthchecks): Alice manages Acme Tickets, Bob is a viewer at Acme Tickets,
Charlie manages the Opera House and must see nothing of Acme, Sam is platform staff.

Under CI=true a skip whose reason is not in CI_ALLOWED_SKIPS fails the run (a missing
program already fails there: tests/support.py's require_program).
"""

import os
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from acme_client import profiles
from certificates import services
from certificates.bundle import certificate_bundle_parse
from certificates.models import Certificate
from certmgr import demo_pki
from institutions.models import Institution, Membership
from saleschannels.models import SalesChannel, VerificationMethod
from tests.nginx import nginx_run
from tests.pebble import pebble_run
from tests.support import PASSWORD, require_program

# The skips CI may report: one entry per reason that happens today in one of its two passes
# (.ci/run: `make test` on SQLite, `make test-postgres`). Anything else skipped under CI=true
# is a test CI silently stopped running, and fails (pytest_runtest_makereport below).
CI_ALLOWED_SKIPS = frozenset(
    {
        # SQLite pass, tests/core/test_database_dump.py: pg_dump needs a PostgreSQL database;
        # the PostgreSQL pass runs this test.
        "PostgreSQL only: runs under `make test-postgres` (scripts/with-postgres)",
        # PostgreSQL pass, same file: the SQLite-file test has no SQLite file to read; the
        # SQLite pass runs it, and the pg_dump test is its PostgreSQL counterpart.
        "the database is postgresql; the pg_dump test covers it",
        # PostgreSQL pass, tests/certificates/test_hostile_upload.py, once per corpus folder
        # (4): the corpus is CPU-bound parsing, run once, in the SQLite pass.
        "the corpus runs once, in the SQLite pass of CI: it exercises the parser and the "
        "views, whose database work is the same on PostgreSQL (some 100 s of CPU per pass)",
    }
)


def _skip_reason(report) -> str:
    """The reason a skipped report gives, as passed to pytest.skip() or skipif()."""
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return message.removeprefix("Skipped: ")


def _skip_forbidden(report) -> bool:
    """Turn a skip CI does not allow into a failure naming its reason; True when it did."""
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return False
    reason = _skip_reason(report)
    if reason in CI_ALLOWED_SKIPS:
        return False
    report.outcome = "failed"
    report.longrepr = (
        f"Skipped under CI=true for a reason not in CI_ALLOWED_SKIPS (tests/conftest.py): "
        f"{reason!r}. Make the test run in CI, or allow the reason there with a comment why."
    )
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _skip_forbidden(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    # A whole module skipped at import (pytest.importorskip, allow_module_level=True).
    report = yield
    _skip_forbidden(report)
    return report


@pytest.fixture(autouse=True, scope="session")
def _celery_in_memory():
    """Tasks queued by the code under test go to an in-memory broker nobody consumes; tests
    that need a worker start a real one (tests/celery_worker.py) or call the task."""
    from certmgr.celery import app

    app.conf.broker_url = "memory://"
    app.conf.broker_transport_options = {}


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Django's test client calls itself "testserver": let it reach the back office. Each
    test deploys to an edge folder of its own."""
    settings.CERTMGR_BACKOFFICE_HOSTS = [*settings.CERTMGR_BACKOFFICE_HOSTS, "testserver"]
    settings.CERTMGR_EDGE_DIR = tmp_path / "edge"
    # The SSL page reads the CA's directory for its profiles (acme_client/profiles.py): a
    # test never asks the public CA of the default setting; it is "could not be read" unless
    # the test points ACME_DIRECTORY_URL at Pebble.
    cache.set(
        profiles._cache_key(settings.ACME_DIRECTORY_URL),
        {"known": False, "profiles": {}},
        None,
    )


@pytest.fixture(scope="session")
def pki():
    """A root and an intermediate CA, made once per test session."""
    root = demo_pki.ca_create(common_name="Test Root CA")
    intermediate = demo_pki.ca_create(common_name="Test Intermediate CA", issuer=root)
    return {"root": root, "intermediate": intermediate}


@pytest.fixture(scope="session")
def apple_ca():
    """A CA standing in for Apple's Worldwide Developer Relations CA, made once per session."""
    return demo_pki.ca_create(
        common_name="Stand-in Apple Worldwide Developer Relations CA", organization="Apple Inc."
    )


@pytest.fixture
def acme(db):
    return Institution.objects.create(name="Acme Tickets", slug="acme-tickets")


@pytest.fixture
def opera(db):
    return Institution.objects.create(name="Opera House", slug="opera-house")


def _member(django_user_model, username, institution, role):
    user = django_user_model.objects.create_user(username=username, password=PASSWORD)
    if institution is not None:
        Membership.objects.create(user=user, institution=institution, role=role)
    return user


@pytest.fixture
def alice(django_user_model, acme):
    return _member(django_user_model, "alice", acme, Membership.Role.MANAGER)


@pytest.fixture
def bob(django_user_model, acme):
    return _member(django_user_model, "bob", acme, Membership.Role.VIEWER)


@pytest.fixture
def charlie(django_user_model, opera):
    return _member(django_user_model, "charlie", opera, Membership.Role.MANAGER)


@pytest.fixture
def as_alice(client, alice):
    """The test client, logged in as Alice (manager of Acme Tickets)."""
    client.force_login(alice)
    return client


@pytest.fixture
def sam(django_user_model):
    return django_user_model.objects.create_user(username="sam", password=PASSWORD, is_staff=True)


@pytest.fixture
def make_certificate(pki):
    """Store a certificate through the real parser and upload service.

    `days_left` places the expiry relative to now; `lifetime` is the total validity in days;
    `key` (a private key object) makes it for that key, as a renewal that keeps its key.
    """

    def make(
        institution,
        *,
        name="shop certificate",
        hostnames=("shop.example.test",),
        days_left=60,
        lifetime=90,
        actor=None,
        with_key=True,
        source=Certificate.Source.UPLOADED,
        replaces=None,
        key=None,
    ) -> Certificate:
        not_after = timezone.now() + timedelta(days=days_left)
        leaf = demo_pki.leaf_create(
            issuer=pki["intermediate"],
            hostnames=list(hostnames),
            not_before=not_after - timedelta(days=lifetime),
            not_after=not_after,
            key=key,
        )
        bundle = certificate_bundle_parse(
            certificate=leaf.certificate_pem,
            private_key=leaf.key_pem if with_key else None,
            chain=pki["intermediate"].certificate_pem,
            now=leaf.certificate.not_valid_before_utc + timedelta(hours=1),
        )
        assert bundle.ok, bundle.errors
        return services.certificate_upload(
            institution=institution,
            name=name,
            kind=Certificate.Kind.SSL,
            bundle=bundle,
            actor=actor,
            source=source,
            replaces=replaces,
        )

    return make


@pytest.fixture
def make_verified_channel(db):
    """Create a sales channel whose hostname its institution has proved, as staff approval
    records it (README, "Onboarding a hostname"): only such a channel is ordered for.
    Other keyword arguments are SalesChannel fields (e.g. ssl_mode="managed")."""

    def make(institution, *, hostname: str, name: str = "Main shop", **fields) -> SalesChannel:
        return SalesChannel.objects.create(
            institution=institution,
            name=name,
            hostname=hostname,
            hostname_verified_at=timezone.now(),
            hostname_verified_by=VerificationMethod.STAFF,
            **fields,
        )

    return make


@pytest.fixture
def nginx_edge(tmp_path, settings):
    """A real nginx on 127.0.0.1 serving TLS from a fresh edge directory, which the app
    deploys to (CERTMGR_EDGE_DIR) and the probe connects to (CERTMGR_PROBE_ADDRESS)."""
    require_program("nginx")
    edge_dir = tmp_path / "edge"
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    with nginx_run(edge_dir=edge_dir, workdir=workdir) as nginx:
        settings.CERTMGR_EDGE_DIR = edge_dir
        settings.CERTMGR_PROBE_ADDRESS = nginx.address
        settings.CERTMGR_PROBE_TIMEOUT = 5.0
        yield nginx


@pytest.fixture
def pebble(live_server, tmp_path, settings):
    """Pebble whose HTTP-01 validations reach the live server (every name resolves to
    127.0.0.1 through pebble-challtestsrv), and the app pointed at it: at the same DNS
    server for its pre-flight checks, with 127.0.0.1 as the edge's address and the live
    server's port as the one HTTP-01 is fetched on (acme_client/preflight.py)."""
    port = int(live_server.url.rsplit(":", 1)[1])
    with pebble_run(workdir=tmp_path / "pebble", http_port=port) as server:
        settings.ACME_DIRECTORY_URL = server.directory_url
        settings.ACME_CA_BUNDLE = str(server.ca_bundle)
        settings.ACME_ORDER_TIMEOUT = 60
        settings.CERTMGR_DNS_RESOLVERS = [f"127.0.0.1:{server.dns_port}"]
        settings.CERTMGR_EDGE_ADDRESSES = ["127.0.0.1"]
        settings.ACME_HTTP01_PORT = port
        yield server
