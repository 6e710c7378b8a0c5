"""The SSL upload page: every accepted input form, every refusal on its field, manual expiry."""

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from django.urls import reverse
from django.utils import timezone

from certificates import forms
from certificates.models import Certificate
from certmgr import demo_pki
from core import encryption
from core.models import AuditEvent
from tests.support import errors_of, upload

URL = reverse("certificate_upload_ssl")


@pytest.fixture
def leaf(pki):
    return demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.example.test"])


def post(client, institution, **files_and_fields):
    data = {"institution": institution.pk, "name": "Shop", **files_and_fields}
    return client.post(URL, data)


def test_it_shows_the_form_with_the_seed_field_names(as_alice):
    response = as_alice.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for field in ("institution", "name", "certificate", "private_key", "chain", "passphrase"):
        assert f'name="{field}"' in html
    assert "Certificate key" in html and "Certificate chain" in html
    assert 'name="expires_at"' not in html


def test_it_stores_pem_certificate_key_and_chain(as_alice, acme, alice, leaf, pki):
    response = post(
        as_alice,
        acme,
        certificate=upload("domain.crt", leaf.certificate_pem),
        private_key=upload("domain.key", leaf.key_pem),
        chain=upload("intermediate.crt", pki["intermediate"].certificate_pem),
    )
    certificate = Certificate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == certificate.get_absolute_url()
    assert certificate.institution == acme
    assert certificate.created_by == alice
    assert certificate.expires_at == leaf.certificate.not_valid_after_utc
    assert certificate.expiry_source == Certificate.ExpirySource.PARSED
    assert certificate.domains == ["shop.example.test"]
    assert certificate.chain_pem == pki["intermediate"].certificate_pem.decode()
    assert (
        certificate.fingerprint_sha256.replace(":", "").lower()
        == leaf.certificate.fingerprint(hashes.SHA256()).hex()
    )
    # The key is encrypted at rest and decrypts to the same key.
    assert "PRIVATE KEY" not in certificate.private_key_encrypted
    assert encryption.decrypt(certificate.private_key_encrypted).startswith(b"-----BEGIN")
    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.CERTIFICATE_UPLOAD
    assert event.actor == alice and event.target_id == certificate.pk


def test_it_accepts_a_der_certificate(as_alice, acme, leaf, pki):
    post(
        as_alice,
        acme,
        certificate=upload("domain.cer", leaf.der),
        private_key=upload("domain.key", leaf.key_pem),
        chain=upload("intermediate.crt", pki["intermediate"].certificate_pem),
    )
    assert Certificate.objects.get().expires_at == leaf.certificate.not_valid_after_utc


def test_it_accepts_a_combined_pem_in_the_certificate_field(as_alice, acme, leaf, pki):
    combined = leaf.key_pem + leaf.certificate_pem + pki["intermediate"].certificate_pem
    response = post(as_alice, acme, certificate=upload("combined.pem", combined))
    assert response.status_code == 302
    certificate = Certificate.objects.get()
    assert certificate.has_private_key
    assert certificate.chain_pem == pki["intermediate"].certificate_pem.decode()


def test_it_accepts_a_pkcs12_file_with_its_password(as_alice, acme, leaf, pki):
    p12 = demo_pki.pkcs12_bundle(leaf=leaf, chain=[pki["intermediate"]], password=b"s3cret")
    response = post(as_alice, acme, certificate=upload("shop.p12", p12), passphrase="s3cret")
    assert response.status_code == 302
    assert Certificate.objects.get().has_private_key


def test_it_accepts_an_encrypted_key_with_its_passphrase(as_alice, acme, leaf, pki):
    encrypted = demo_pki.key_pem(leaf.private_key, passphrase=b"open sesame")
    response = post(
        as_alice,
        acme,
        certificate=upload("domain.crt", leaf.certificate_pem),
        private_key=upload("domain.key", encrypted),
        chain=upload("intermediate.crt", pki["intermediate"].certificate_pem),
        passphrase="open sesame",
    )
    assert response.status_code == 302
    assert Certificate.objects.get().has_private_key


@pytest.mark.parametrize(
    ("case", "field", "words"),
    [
        ("key_mismatch", "private_key", "does not belong to this certificate"),
        ("wrong_passphrase", "passphrase", "passphrase"),
        ("p12_wrong_password", "passphrase", "password"),
        ("broken_chain", "chain", "broken"),
        ("rsa_1024", "certificate", "2048"),
        ("sha1", "certificate", "SHA-1"),
        ("expired", "certificate", "expired"),
        ("not_yet_valid", "certificate", "not valid before"),
        ("oversized_certificate", "certificate", "64 KiB"),
        ("oversized_key", "private_key", "64 KiB"),
        ("garbage_key", "private_key", "private key"),
        ("no_certificate", "certificate", "Choose the certificate"),
    ],
)
def test_each_refusal_lands_on_its_field(as_alice, acme, leaf, pki, case, field, words):
    intermediate = pki["intermediate"]
    now = timezone.now()
    files = {
        "certificate": upload("domain.crt", leaf.certificate_pem),
        "private_key": upload("domain.key", leaf.key_pem),
        "chain": upload("intermediate.crt", intermediate.certificate_pem),
    }
    extra = {}
    if case == "key_mismatch":
        other = demo_pki.private_key_generate("ec256")
        files["private_key"] = upload("other.key", demo_pki.key_pem(other))
    elif case == "wrong_passphrase":
        files["private_key"] = upload(
            "domain.key", demo_pki.key_pem(leaf.private_key, passphrase=b"right")
        )
        extra["passphrase"] = "wrong"
    elif case == "p12_wrong_password":
        p12 = demo_pki.pkcs12_bundle(leaf=leaf, chain=[intermediate], password=b"right")
        files = {"certificate": upload("shop.pfx", p12)}
        extra["passphrase"] = "wrong"
    elif case == "broken_chain":
        stranger = demo_pki.ca_create(common_name="Unrelated CA")
        files["chain"] = upload("chain.pem", stranger.certificate_pem)
    elif case in ("rsa_1024", "sha1", "expired", "not_yet_valid"):
        kwargs = {"issuer": intermediate, "hostnames": ["shop.example.test"]}
        if case == "rsa_1024":
            kwargs["key_type"] = "rsa1024"
        if case == "sha1":
            kwargs["hash_algorithm"] = hashes.SHA1()
        if case == "expired":
            kwargs.update(not_before=now - timedelta(days=100), not_after=now - timedelta(days=10))
        if case == "not_yet_valid":
            kwargs.update(not_before=now + timedelta(days=10), not_after=now + timedelta(days=100))
        bad = demo_pki.leaf_create(**kwargs)
        files["certificate"] = upload("domain.crt", bad.certificate_pem)
        files["private_key"] = upload("domain.key", bad.key_pem)
    elif case == "oversized_certificate":
        files["certificate"] = upload("big.crt", leaf.certificate_pem + b"#" * 70_000)
    elif case == "oversized_key":
        files["private_key"] = upload("big.key", leaf.key_pem + b"#" * 70_000)
    elif case == "garbage_key":
        files["private_key"] = upload("domain.key", b"this is not a key")
    elif case == "no_certificate":
        del files["certificate"]

    response = post(as_alice, acme, **files, **extra)

    assert response.status_code == 200
    errors = errors_of(response)
    assert field in errors, errors
    assert any(words.lower() in message.lower() for message in errors[field]), errors
    assert not Certificate.objects.exists()


def test_it_asks_for_the_expiry_date_when_the_certificate_cannot_be_read(as_alice, acme, leaf):
    truncated = leaf.der[: len(leaf.der) // 2]
    first = post(
        as_alice,
        acme,
        certificate=upload("domain.cer", truncated),
        private_key=upload("domain.key", leaf.key_pem),
    )
    assert first.status_code == 200
    html = first.content.decode()
    assert 'name="expires_at"' in html
    assert "expiry date could not be read" in html
    assert "Kept from your last attempt: domain.cer" in html
    assert not Certificate.objects.exists()
    # The key kept for the retry is stored encrypted, never in the clear, in the session.
    assert b"PRIVATE KEY" not in as_alice.session["certificate_upload_draft"].encode()

    expires_on = (timezone.now() + timedelta(days=200)).date()
    second = as_alice.post(
        URL, {"institution": acme.pk, "name": "Legacy", "expires_at": expires_on.isoformat()}
    )

    assert second.status_code == 302
    certificate = Certificate.objects.get()
    assert certificate.expiry_source == Certificate.ExpirySource.MANUAL
    assert certificate.expires_at.date() == expires_on
    assert bytes(certificate.content) == truncated
    assert certificate.has_private_key
    detail = as_alice.get(certificate.get_absolute_url()).content.decode()
    assert "Unverified" in detail


def expiry_in(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).date().isoformat()


def test_the_retry_reuses_what_was_read_from_the_kept_files_instead_of_reading_them_again(
    as_alice, acme, leaf, monkeypatch
):
    truncated = leaf.der[: len(leaf.der) // 2]
    first = post(
        as_alice,
        acme,
        certificate=upload("domain.cer", truncated),
        private_key=upload("domain.key", leaf.key_pem),
    )
    assert "expiry date could not be read" in first.content.decode()

    def never(**files):
        raise AssertionError("the kept files were read again")

    monkeypatch.setattr(forms, "certificate_bundle_parse", never)
    second = as_alice.post(
        URL, {"institution": acme.pk, "name": "Legacy", "expires_at": expiry_in(90)}
    )
    assert second.status_code == 302
    certificate = Certificate.objects.get()
    assert bytes(certificate.content) == truncated
    assert certificate.private_key_pem() == leaf.key_pem.decode()


def test_a_file_chosen_on_the_retry_is_read_with_the_kept_ones(as_alice, acme, leaf, pki):
    truncated = leaf.der[: len(leaf.der) // 2]
    post(as_alice, acme, certificate=upload("domain.cer", truncated))
    other = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["other.example.test"])
    second = post(
        as_alice,
        acme,
        private_key=upload("other.key", other.key_pem),
        expires_at=expiry_in(90),
    )
    assert second.status_code == 302
    assert Certificate.objects.get().private_key_pem() == other.key_pem.decode()


def test_the_passphrase_a_kept_key_asked_for_is_used_on_the_retry(as_alice, acme, leaf):
    truncated = leaf.der[: len(leaf.der) // 2]
    encrypted = demo_pki.key_pem(leaf.private_key, passphrase=b"secret")
    first = post(
        as_alice,
        acme,
        certificate=upload("domain.cer", truncated),
        private_key=upload("domain.key", encrypted),
    )
    assert "passphrase" in errors_of(first)
    assert "expiry date could not be read" in first.content.decode()
    second = post(as_alice, acme, passphrase="secret", expires_at=expiry_in(90))
    assert second.status_code == 302, errors_of(second)
    assert Certificate.objects.get().private_key_pem() == leaf.key_pem.decode()


def expiry_field_markup(response) -> str:
    """The expires_at field's block of the page."""
    html = response.content.decode()
    start = html.rindex('<div class="field', 0, html.index('name="expires_at"'))
    return html[start : html.index("</div>", start)]


def test_the_first_ask_for_the_expiry_date_is_a_neutral_prompt_not_an_error(as_alice, acme):
    response = post(as_alice, acme, certificate=upload("odd.crt", b"not a certificate at all"))

    assert response.status_code == 200
    assert not Certificate.objects.exists()
    field = expiry_field_markup(response)
    assert '<p class="prompt" id="id_expires_at_prompt">' in field
    assert "The expiry date could not be read from the certificate: enter it." in field
    assert 'aria-describedby="id_expires_at_prompt"' in field
    assert "has-error" not in field and "errorlist" not in field
    assert "aria-invalid" not in field
    # Why the file could not be read is part of the question, not an error on the file.
    assert errors_of(response) == {}


def test_an_invalid_expiry_date_is_an_error(as_alice, acme):
    response = post(
        as_alice,
        acme,
        certificate=upload("odd.crt", b"not a certificate at all"),
        expires_at=(timezone.now() - timedelta(days=1)).date().isoformat(),
    )

    field = expiry_field_markup(response)
    assert 'class="field has-error"' in field
    assert '<ul class="errorlist" id="id_expires_at_errors">' in field
    assert "This date is in the past" in field
    assert 'aria-invalid="true"' in field


def test_it_refuses_a_typed_expiry_date_in_the_past(as_alice, acme):
    response = post(
        as_alice,
        acme,
        certificate=upload("odd.crt", b"not a certificate at all"),
        expires_at=(timezone.now() - timedelta(days=1)).date().isoformat(),
    )
    assert "expires_at" in errors_of(response)
    assert not Certificate.objects.exists()


def test_it_forbids_viewers(client, bob, acme, leaf):
    client.force_login(bob)
    assert client.get(URL).status_code == 403
    response = post(client, acme, certificate=upload("domain.crt", leaf.certificate_pem))
    assert response.status_code == 403
    assert client.get(reverse("certificate_new")).status_code == 403


def test_it_refuses_an_institution_the_user_does_not_manage(client, charlie, acme, leaf):
    client.force_login(charlie)
    response = post(
        client,
        acme,
        certificate=upload("domain.crt", leaf.certificate_pem),
        private_key=upload("domain.key", leaf.key_pem),
    )
    assert "institution" in errors_of(response)
    assert not Certificate.objects.exists()


def test_it_sends_anonymous_users_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
