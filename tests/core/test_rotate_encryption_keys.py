"""manage.py rotate_encryption_keys: every stored key (and webhook signing secret) moves
under the first key, so the old key can be removed; reruns change nothing; a value under an
unknown key is refused by name."""

from datetime import timedelta
from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from acme_client.models import AcmeAccount
from certificates.models import Certificate, CertificateRequest
from certmgr import demo_pki
from core import encryption
from institutions.models import Institution
from institutions.signing_secrets import signing_secret_encrypted_new
from tests.support import upload

CERTIFICATES, REQUESTS, ACCOUNTS = 200, 100, 5
ENCRYPTED = [
    (Certificate, "private_key_encrypted"),
    (CertificateRequest, "private_key_encrypted"),
    (AcmeAccount, "key_encrypted"),
    (Institution, "webhook_secret_encrypted"),
]


@pytest.fixture
def keys():
    return {name: Fernet.generate_key().decode() for name in ("A", "B", "C")}


def _key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def stored(settings, keys, acme):
    """305 keys (certificates, Apple Pay requests, ACME accounts) and the institution's
    webhook signing secret encrypted under key A; returns {(model, pk): plaintext}."""
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["A"]]
    acme.webhook_secret_encrypted = signing_secret_encrypted_new()
    acme.save()
    plain: dict[tuple[type, int], str] = {(Institution, acme.pk): acme.webhook_signing_secret}
    expires_at = timezone.now() + timedelta(days=60)
    pems = [_key_pem() for _ in range(CERTIFICATES)]
    certificates = Certificate.objects.bulk_create(
        Certificate(
            institution=acme,
            name=f"shop {n}",
            expires_at=expires_at,
            private_key_encrypted=encryption.encrypt(pem.encode()),
        )
        for n, pem in enumerate(pems)
    )
    plain.update({(Certificate, c.pk): pem for c, pem in zip(certificates, pems, strict=True)})
    # A certificate without a key has nothing to rotate and must stay without one.
    Certificate.objects.create(institution=acme, name="no key", expires_at=expires_at)
    pems = [_key_pem() for _ in range(REQUESTS)]
    requests = CertificateRequest.objects.bulk_create(
        CertificateRequest(
            institution=acme,
            kind=CertificateRequest.Kind.APPLE_MERCHANT_IDENTITY,
            name=f"merchant {n}",
            merchant_identifier=f"merchant.test.shop{n}",
            csr_pem="(not read here)",
            private_key_encrypted=encryption.encrypt(pem.encode()),
        )
        for n, pem in enumerate(pems)
    )
    plain.update({(CertificateRequest, r.pk): pem for r, pem in zip(requests, pems, strict=True)})
    for n in range(ACCOUNTS):
        pem = _key_pem()
        account = AcmeAccount.objects.create(
            directory_url=f"https://ca{n}.example.test/directory",
            key_encrypted=encryption.encrypt(pem.encode()),
        )
        plain[(AcmeAccount, account.pk)] = pem
    return plain


def _institution_secrets_renew() -> None:
    """Every institution's webhook signing secret anew, under the first key now configured
    (the fixtures made them under the test settings' key)."""
    for institution in Institution.objects.all():
        institution.webhook_secret_encrypted = signing_secret_encrypted_new()
        institution.save()


def _tokens() -> dict[tuple[type, int], str]:
    return {
        (model, pk): token
        for model, column in ENCRYPTED
        for pk, token in model.objects.exclude(**{column: ""}).values_list("pk", column)
    }


def _rotate(**options) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def test_after_rotation_the_old_key_can_be_removed_and_every_key_still_decrypts(
    settings, keys, stored
):
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"], keys["A"]]

    output = _rotate(batch_size=64)  # several batches per table

    assert f"certificates_certificate.private_key_encrypted: {CERTIFICATES} value(s), " in output
    assert f"{CERTIFICATES} re-encrypted, 0 already under the first key" in output
    assert f"certificates_certificaterequest.private_key_encrypted: {REQUESTS} value(s)" in output
    assert f"acme_client_acmeaccount.key_encrypted: {ACCOUNTS} value(s)" in output
    assert "institutions_institution.webhook_secret_encrypted: 1 value(s)" in output
    assert "whsec_" not in output
    assert f"Done: {CERTIFICATES + REQUESTS + ACCOUNTS + 1} value(s) re-encrypted." in output
    assert "PRIVATE KEY" not in output

    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"]]
    tokens = _tokens()
    assert tokens.keys() == stored.keys()
    old_key = Fernet(keys["A"].encode())
    for row, token in tokens.items():
        assert encryption.decrypt(token).decode() == stored[row]
        with pytest.raises(InvalidToken):
            old_key.decrypt(token.encode())
    assert Certificate.objects.get(name="no key").private_key_encrypted == ""
    # What the application reads back: the model's own accessors.
    some_certificate = Certificate.objects.exclude(private_key_encrypted="").first()
    assert some_certificate.private_key_pem() == stored[(Certificate, some_certificate.pk)]


def test_a_second_run_changes_nothing(settings, keys, stored):
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"], keys["A"]]
    _rotate()
    after_first = _tokens()

    output = _rotate()

    assert _tokens() == after_first
    assert f"0 re-encrypted, {CERTIFICATES} already under the first key" in output
    assert "Done: 0 value(s) re-encrypted." in output


def test_a_run_interrupted_half_way_is_finished_by_the_next(settings, keys, stored):
    # What an interrupted run leaves: the first batches under B, the rest still under A.
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"], keys["A"]]
    first_half = Certificate.objects.exclude(private_key_encrypted="").order_by("pk")[:120]
    for certificate in first_half:
        certificate.private_key_set(stored[(Certificate, certificate.pk)])
        certificate.save(update_fields=["private_key_encrypted"])
    already = {row: token for row, token in _tokens().items() if row[0] is Certificate}

    output = _rotate()

    assert f"{CERTIFICATES} value(s), 80 re-encrypted, 120 already under the first key" in output
    tokens = _tokens()
    assert all(tokens[(Certificate, c.pk)] == already[(Certificate, c.pk)] for c in first_half)
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"]]
    assert all(encryption.decrypt(tokens[row]).decode() == pem for row, pem in stored.items())


def test_a_dry_run_counts_and_changes_nothing(settings, keys, stored):
    before = _tokens()
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"], keys["A"]]

    output = _rotate(dry_run=True)

    assert f"{CERTIFICATES} to re-encrypt" in output
    assert (
        f"Dry run: {CERTIFICATES + REQUESTS + ACCOUNTS + 1} value(s) would be re-encrypted"
        in output
    )
    assert _tokens() == before


def test_a_value_under_an_unknown_key_is_named_and_nothing_is_changed(settings, keys, stored, acme):
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["C"]]
    stranger = Certificate.objects.create(
        institution=acme, name="under C", expires_at=timezone.now() + timedelta(days=9)
    )
    stranger.private_key_set(_key_pem())
    stranger.save()
    before = _tokens()
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"], keys["A"]]
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError) as refused:
        call_command("rotate_encryption_keys", stdout=out, stderr=err)

    assert f"certificates_certificate.private_key_encrypted row {stranger.pk}:" in err.getvalue()
    assert "1 stored value(s) cannot be decrypted" in str(refused.value)
    assert "do not remove any old key" in str(refused.value)
    everything = out.getvalue() + err.getvalue() + str(refused.value)
    assert before[(Certificate, stranger.pk)] not in everything
    assert "PRIVATE KEY" not in everything
    assert _tokens() == before  # refused before anything was written


def test_the_upload_draft_kept_in_the_session_is_re_encrypted_too(
    settings, keys, as_alice, acme, pki
):
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["A"]]
    _institution_secrets_renew()
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.example.test"])
    url = reverse("certificate_upload_ssl")
    unreadable = leaf.der[: len(leaf.der) // 2]
    first = as_alice.post(
        url,
        {
            "institution": acme.pk,
            "name": "Legacy",
            "certificate": upload("domain.cer", unreadable),
            "private_key": upload("domain.key", leaf.key_pem),
        },
    )
    assert first.context["form"].expiry_prompt  # the files wait in the session

    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"], keys["A"]]
    output = _rotate()
    assert "django_session upload drafts: 1 re-encrypted, 0 dropped" in output

    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"]]
    expires_on = (timezone.now() + timedelta(days=200)).date()
    second = as_alice.post(
        url, {"institution": acme.pk, "name": "Legacy", "expires_at": expires_on.isoformat()}
    )
    assert second.status_code == 302, second.context["form"].errors
    certificate = Certificate.objects.get(name="Legacy")
    assert bytes(certificate.content) == unreadable
    assert certificate.private_key_pem() == leaf.key_pem.decode()


def test_a_session_draft_no_key_decrypts_is_dropped_not_refused(settings, keys, as_alice):
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["A"]]
    _institution_secrets_renew()
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["C"]]
    session = as_alice.session
    session["certificate_upload_draft"] = encryption.encrypt(b"{}")
    session["kept"] = "other session data stays"
    session.save()
    settings.CERTMGR_ENCRYPTION_KEYS = [keys["B"], keys["A"]]

    output = _rotate()

    assert "django_session upload drafts: 0 re-encrypted, 1 dropped" in output
    session = as_alice.session
    assert "certificate_upload_draft" not in session
    assert session["kept"] == "other session data stays"
