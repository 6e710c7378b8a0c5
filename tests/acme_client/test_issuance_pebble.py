"""Managed issuance against a real ACME CA (Pebble), validated over real HTTP-01 requests
that reach this application, deployed to the edge and served by a real nginx. The channels'
hostnames are verified, and every order follows the real pre-flight (DNS and CAA asked of
Pebble's DNS server, the HTTP-01 self-check fetched from the live server)."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.utils import timezone

from acme_client import services
from acme_client.models import AcmeAccount, AcmeChallenge, AcmeOrder
from certificates.models import Certificate
from certificates.renewal import renewal_window
from saleschannels.edge import edge_channel_deploy as edge_deploy
from saleschannels.findings import Check, Finding, Reason
from saleschannels.models import ChannelStatus, SalesChannel
from saleschannels.probe import certificate_fingerprint
from tests.acme_client.issuing import issue
from tests.nginx import served_certificate

pytestmark = pytest.mark.django_db(transaction=True)

HOSTNAME = "shop.acme.test"


def served_fingerprint(nginx) -> str:
    return certificate_fingerprint(served_certificate(nginx.address, HOSTNAME))


def ca_failure(reason: Reason) -> Finding:
    """What the channel says when Pebble's order ended in `reason`."""
    return Finding(Check.ACME, reason, {"ca": "Pebble (test CA)"})


def assert_failed_with(channel: SalesChannel, finding: Finding) -> None:
    """The channel's status names the typed reason; the order keeps its plain words."""
    assert (channel.status_reason, channel.status_params) == (
        finding.reason.value,
        finding.params,
    ), channel.renewal_last_error
    assert AcmeOrder.objects.filter(status=AcmeOrder.Status.FAILED).get().error == finding.words


@pytest.fixture
def channel(acme, make_verified_channel):
    return make_verified_channel(acme, name="Main", hostname=HOSTNAME, ssl_mode="managed")


def test_a_managed_channel_gets_a_certificate_from_the_ca(pebble, channel, settings):
    certificate = issue(channel)

    assert certificate is not None, SalesChannel.objects.get(pk=channel.pk).renewal_last_error
    channel.refresh_from_db()
    assert channel.active_certificate == certificate
    assert certificate.source == Certificate.Source.MANAGED
    assert certificate.domains == [HOSTNAME]
    assert certificate.has_private_key
    assert certificate.key_description == "EC P-256"
    # Issued by Pebble's hierarchy: the chain ends at an intermediate of its root.
    chain = x509.load_pem_x509_certificates(certificate.chain_pem.encode())
    roots = pebble.issuer_roots()
    assert any(chain[-1].issuer == root.subject for root in roots)
    # Renewal is planned in the window that ends at 2/3 of the lifetime (Pebble offers no ARI).
    start, end = renewal_window(not_before=certificate.not_before, not_after=certificate.not_after)
    assert start <= channel.renewal_due_at <= end
    assert channel.renewal_failures == 0 and not channel.renewal_claim
    # Deployed to the edge, one account, one order, no challenge left behind.
    edge = settings.CERTMGR_EDGE_DIR
    assert (edge / f"{HOSTNAME}.crt").read_text() == certificate.public_bundle_pem()
    assert AcmeAccount.objects.count() == 1
    assert AcmeOrder.objects.get().status == AcmeOrder.Status.VALID
    assert not AcmeChallenge.objects.exists()
    assert pebble.orders_count() == 1


def test_renewal_replaces_the_previous_certificate(pebble, channel):
    first = issue(channel)
    second = issue(channel)
    assert second.replaces == first
    channel.refresh_from_db()
    assert channel.active_certificate == second
    assert AcmeAccount.objects.count() == 1  # the account is reused


def public_key_of(certificate) -> bytes:
    leaf = x509.load_pem_x509_certificate(certificate.certificate_pem.encode())
    return leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_a_renewal_keeps_the_key_and_the_edge_key_file(pebble, channel, settings):
    first = issue(channel)
    key_file = settings.CERTMGR_EDGE_DIR / f"{HOSTNAME}.key"
    before = key_file.stat()
    second = issue(channel)
    assert second.replaces == first
    assert public_key_of(second) == public_key_of(first)
    assert second.fingerprint_sha256 != first.fingerprint_sha256
    # Only the .crt moved: the key file is the same file, never rewritten (edge.py).
    assert (settings.CERTMGR_EDGE_DIR / f"{HOSTNAME}.crt").read_text() == (
        second.public_bundle_pem()
    )
    after = key_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_new_key_when_reuse_is_off_or_the_key_type_changed(pebble, channel, settings):
    first = issue(channel)
    settings.ACME_REUSE_KEY = False
    second = issue(channel)
    assert public_key_of(second) != public_key_of(first)
    settings.ACME_REUSE_KEY = True
    settings.ACME_KEY_TYPE = "rsa2048"
    third = issue(channel)
    assert third.key_description == "RSA 2048"
    # From then on the RSA key is kept.
    assert public_key_of(issue(channel)) == public_key_of(third)


def test_an_uploaded_certificates_key_is_never_taken_over(pebble, channel, acme, make_certificate):
    uploaded = make_certificate(acme, hostnames=[HOSTNAME])
    SalesChannel.objects.filter(pk=channel.pk).update(active_certificate=uploaded)
    managed = issue(channel)
    assert public_key_of(managed) != public_key_of(uploaded)


def test_rsa_keys_can_be_asked_for(pebble, channel, settings):
    settings.ACME_KEY_TYPE = "rsa2048"
    assert issue(channel).key_description == "RSA 2048"


def test_a_failed_validation_is_recorded_and_the_old_certificate_stays(
    pebble, channel, acme, make_certificate, monkeypatch
):
    old = make_certificate(acme, hostnames=[HOSTNAME])
    channel.active_certificate = old
    channel.save()
    # The application answers the challenge wrongly: Pebble's real validation fails.
    publish = services.challenge_publish
    monkeypatch.setattr(
        services,
        "challenge_publish",
        lambda *, hostname, token, key_authorization: publish(
            hostname=hostname, token=token, key_authorization="wrong." + key_authorization
        ),
    )

    assert issue(channel) is None

    channel.refresh_from_db()
    assert channel.active_certificate == old
    assert channel.renewal_failures == 1
    assert "could not validate" in channel.renewal_last_error
    # The old certificate was uploaded: the first managed one is what failed to be issued.
    assert channel.status == ChannelStatus.ISSUANCE_FAILING
    assert_failed_with(channel, ca_failure(Reason.ACME_UNAUTHORIZED))
    assert channel.renewal_next_attempt_at > timezone.now()
    assert not channel.renewal_claim
    assert AcmeOrder.objects.get().status == AcmeOrder.Status.FAILED
    assert pebble.orders_count() == 1


def test_a_ca_stopped_during_an_order_is_a_recorded_failure_and_the_next_attempt_succeeds(
    pebble, channel, acme, make_certificate, nginx_edge, monkeypatch
):
    old = make_certificate(acme, hostnames=[HOSTNAME])
    channel.ssl_mode = "uploaded"
    channel.active_certificate = channel.certificate = old
    channel.save()
    edge_deploy(channel)
    channel.ssl_mode = "managed"
    channel.save()
    # The CA goes away right after the order is placed, while its challenge is published.
    publish = services.challenge_publish

    def publish_then_stop_the_ca(**kwargs):
        publish(**kwargs)
        pebble.stop()

    monkeypatch.setattr(services, "challenge_publish", publish_then_stop_the_ca)
    assert issue(channel) is None

    channel.refresh_from_db()
    assert channel.active_certificate == old
    assert served_fingerprint(nginx_edge) == old.fingerprint_sha256
    assert "could not be reached" in channel.renewal_last_error
    assert_failed_with(channel, ca_failure(Reason.ACME_UNREACHABLE))
    assert channel.renewal_failures == 1
    assert channel.renewal_next_attempt_at > timezone.now()
    assert AcmeOrder.objects.get().status == AcmeOrder.Status.FAILED

    monkeypatch.setattr(services, "challenge_publish", publish)
    pebble.start()
    # Pebble keeps no state across restarts: the stored account is unknown to it now.
    AcmeAccount.objects.all().delete()
    renewed = issue(channel)
    assert renewed is not None
    channel.refresh_from_db()
    assert channel.active_certificate == renewed and channel.renewal_failures == 0
    assert renewed.replaces == old
    assert served_fingerprint(nginx_edge) == renewed.fingerprint_sha256


def test_the_issued_certificate_is_served_by_nginx(pebble, channel, nginx_edge):
    certificate = issue(channel)
    served = served_certificate(nginx_edge.address, HOSTNAME)
    assert served.serial_number == int(certificate.serial_number, 16)


@pytest.fixture
def pebble_with_eab(live_server, tmp_path, settings):
    """A Pebble that only accepts accounts bound to an external account (EAB), the app's
    pre-flight pointed at it as the `pebble` fixture does (tests/conftest.py)."""
    from tests.pebble import pebble_run

    port = int(live_server.url.rsplit(":", 1)[1])
    hmac_key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    with pebble_run(
        workdir=tmp_path / "pebble", http_port=port, eab_keys={"kid-1": hmac_key}
    ) as server:
        settings.ACME_DIRECTORY_URL = server.directory_url
        settings.ACME_CA_BUNDLE = str(server.ca_bundle)
        settings.ACME_EAB_KID = "kid-1"
        settings.ACME_EAB_HMAC_KEY = hmac_key
        settings.CERTMGR_DNS_RESOLVERS = [server.dns.dns_address]
        settings.CERTMGR_EDGE_ADDRESSES = ["127.0.0.1"]
        settings.ACME_HTTP01_PORT = port
        yield server


def test_an_account_is_bound_to_the_external_account_when_the_ca_requires_it(
    pebble_with_eab, channel, settings
):
    assert issue(channel) is not None
    settings.ACME_EAB_KID = ""
    AcmeAccount.objects.all().delete()
    assert issue(channel) is None
    channel.refresh_from_db()
    assert "externalAccountRequired" in channel.renewal_last_error
    # A managed certificate was issued before: it is its renewal that fails.
    assert channel.status == ChannelStatus.RENEWAL_FAILING
    assert_failed_with(channel, ca_failure(Reason.ACME_EXTERNAL_ACCOUNT))
