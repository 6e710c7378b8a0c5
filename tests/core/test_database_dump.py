"""A copy of the database holds no private-key material and no Fernet key: neither the SQLite
file (with its write-ahead log) nor a real `pg_dump` of PostgreSQL.

Rows are committed (transactional tests) so that they reach the file or another connection.
The PostgreSQL test runs when the suite does (`make test-postgres`, which CI runs too).
"""

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.sessions.models import Session
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from acme_client import protocol
from acme_client.models import AcmeAccount
from certificates import services
from certificates.bundle import KEY_NOT_CERTIFICATE_MESSAGE
from certificates.models import Certificate, CertificateRequest
from certmgr import demo_pki
from core import encryption
from tests.leaks import Secrets
from tests.support import errors_of, require_program, upload

pytestmark = pytest.mark.django_db(transaction=True)

PASSPHRASE = "dump-test passphrase 7f3a"


@pytest.fixture
def secrets_stored(settings, as_alice, alice, acme, pki, make_certificate) -> Secrets:
    """Every way a key reaches the database, done for real; returns what must not leak."""
    settings.CERTMGR_ENCRYPTION_KEYS = [
        Fernet.generate_key().decode(),
        *settings.CERTMGR_ENCRYPTION_KEYS,
    ]
    secrets = Secrets()
    for number, key in enumerate(settings.CERTMGR_ENCRYPTION_KEYS):
        secrets.fernet_key(f"CERTMGR_ENCRYPTION_KEYS[{number}]", key)

    for number in range(3):
        make_certificate(acme, name=f"service upload {number}", actor=alice)

    url = reverse("certificate_upload_ssl")
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.example.test"])
    encrypted_key = demo_pki.key_pem(leaf.private_key, passphrase=PASSPHRASE.encode())
    secrets.key("uploaded encrypted key file", encrypted_key)
    secrets.text("upload passphrase", PASSPHRASE)
    response = as_alice.post(
        url,
        {
            "institution": acme.pk,
            "name": "encrypted key upload",
            "certificate": upload("domain.crt", leaf.certificate_pem),
            "private_key": upload("domain.key", encrypted_key),
            "chain": upload("intermediate.crt", pki["intermediate"].certificate_pem),
            "passphrase": PASSPHRASE,
        },
    )
    assert response.status_code == 302

    # An unreadable certificate: the form asks for the expiry and keeps the files (with the
    # key) in the session meanwhile; then the certificate is stored as unverified.
    legacy = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["old.example.test"])
    first = as_alice.post(
        url,
        {
            "institution": acme.pk,
            "name": "unverified upload",
            "certificate": upload("domain.cer", legacy.der[: len(legacy.der) // 2]),
            "private_key": upload("domain.key", legacy.key_pem),
        },
    )
    assert first.context["form"].expiry_prompt
    expires_on = (timezone.now() + timedelta(days=100)).date().isoformat()
    second = as_alice.post(
        url, {"institution": acme.pk, "name": "unverified upload", "expires_at": expires_on}
    )
    assert second.status_code == 302
    # And one left waiting in the session, as when an operator walks away from the form.
    pending = as_alice.post(
        url,
        {
            "institution": acme.pk,
            "name": "abandoned upload",
            "certificate": upload("domain.cer", legacy.der[:100]),
            "private_key": upload("domain.key", legacy.key_pem),
        },
    )
    assert pending.context["form"].expiry_prompt

    services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_MERCHANT_IDENTITY,
        merchant_identifier="merchant.test.dump",
        name="merchant identity",
        actor=alice,
    )
    # As acme_client.services.account_client stores a new account.
    AcmeAccount.objects.create(
        directory_url="https://ca.example.test/directory",
        key_encrypted=encryption.encrypt(protocol.account_key_pem(protocol.account_key_generate())),
    )

    for certificate in Certificate.objects.exclude(private_key_encrypted=""):
        secrets.key(f"key of certificate {certificate.pk}", certificate.private_key_pem())
    for request in CertificateRequest.objects.all():
        secrets.key(f"key of request {request.pk}", request.private_key_pem())
    for account in AcmeAccount.objects.all():
        secrets.key(f"ACME account key {account.pk}", encryption.decrypt(account.key_encrypted))
    assert Certificate.objects.exclude(private_key_encrypted="").count() == 5
    return secrets


def _session_contents() -> bytes:
    """The decoded data of every stored session (stored base64, so checked decoded too)."""
    return b"\n".join(repr(s.get_decoded()).encode() for s in Session.objects.all())


def _file_bytes(path: Path) -> bytes:
    """The bytes of a file, read by another process (`cat`).

    Never open and close a SQLite database file in a process that has it open through SQLite:
    closing any descriptor of a file drops every POSIX lock the process holds on it, those of
    SQLite's connections included (sqlite.org/howtocorrupt.html, 2.2). Here that left the test
    database failing with "disk I/O error" for the tests after this one.
    """
    if not path.exists():
        return b""
    return subprocess.run(["cat", str(path)], capture_output=True, check=True).stdout


def test_the_sqlite_file_and_its_write_ahead_log_hold_no_key_material(secrets_stored):
    if connection.vendor != "sqlite":
        pytest.skip(f"the database is {connection.vendor}; the pg_dump test covers it")
    database = Path(connection.settings_dict["NAME"])
    wal = Path(f"{database}-wal")
    before_checkpoint = _file_bytes(wal)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, _, _ = cursor.fetchone()
    assert busy == 0, "the checkpoint could not complete"

    contents = _file_bytes(database)
    # The rows are really there (a token of each table), so the absence below means something.
    for model, column in [
        (Certificate, "private_key_encrypted"),
        (CertificateRequest, "private_key_encrypted"),
        (AcmeAccount, "key_encrypted"),
    ]:
        token = model.objects.exclude(**{column: ""}).values_list(column, flat=True).first()
        assert token.encode() in contents, f"{model.__name__}'s token not in the file"

    for name, data in [
        ("database file", contents),
        ("write-ahead log before the checkpoint", before_checkpoint),
        ("write-ahead log after the checkpoint", _file_bytes(wal)),
        ("decoded sessions", _session_contents()),
    ]:
        assert secrets_stored.found_in(data) == [], name


def test_a_pg_dump_holds_no_key_material(secrets_stored):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: runs under `make test-postgres` (scripts/with-postgres)")
    pg_dump = require_program("pg_dump")
    database = connection.settings_dict
    environment = {**os.environ, "PGPASSWORD": database["PASSWORD"] or ""}
    dump = subprocess.run(
        [
            pg_dump,
            "--no-password",
            "--host",
            database["HOST"] or "localhost",
            "--port",
            str(database["PORT"] or 5432),
            "--username",
            database["USER"],
            "--dbname",
            database["NAME"],  # the test database the fixture committed to
        ],
        capture_output=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert dump.returncode == 0, dump.stderr.decode(errors="replace")
    token = Certificate.objects.exclude(private_key_encrypted="").values_list(
        "private_key_encrypted", flat=True
    )[0]
    assert token.encode() in dump.stdout, "the dump does not hold the certificates' rows"
    assert secrets_stored.found_in(dump.stdout) == []
    assert secrets_stored.found_in(_session_contents()) == []


@pytest.mark.parametrize("form", ["PEM key and a damaged certificate", "DER key"])
def test_an_unreadable_certificate_file_holding_a_key_is_not_kept_in_the_clear(
    form, as_alice, acme, pki
):
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.example.test"])
    if form == "DER key":
        data = demo_pki.key_der(leaf.private_key)
    else:
        data = leaf.key_pem + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    secrets = Secrets()
    secrets.key("the key", leaf.key_pem)
    url = reverse("certificate_upload_ssl")
    response = as_alice.post(
        url, {"institution": acme.pk, "name": "key", "certificate": upload("domain.pem", data)}
    )
    # Refused on its field, not taken as an unreadable certificate to keep as uploaded.
    assert KEY_NOT_CERTIFICATE_MESSAGE in errors_of(response)["certificate"]
    expires_on = (timezone.now() + timedelta(days=100)).date().isoformat()
    as_alice.post(url, {"institution": acme.pk, "name": "key", "expires_at": expires_on})

    kept = b"".join(
        bytes(content) for content in Certificate.objects.values_list("content", flat=True)
    )
    assert secrets.found_in(kept) == []
    assert not Certificate.objects.exists()
