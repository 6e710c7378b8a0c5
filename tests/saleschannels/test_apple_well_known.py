"""Apple Pay on a sales channel: the domain-association file served on its hostname through the
host routing, the Apple Pay page that turns it on, and the probe that fetches it through a real
nginx edge the way Apple does."""

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from certificates import services
from certificates.models import Certificate
from core.models import AuditEvent
from saleschannels.edge import edge_channel_deploy
from saleschannels.models import ProbeFailure, SalesChannel
from saleschannels.probe import channel_probe, channels_probe
from tests.apple import PROOF_BYTES
from tests.nginx import nginx_run
from tests.support import page_html, require_program

WELL_KNOWN = "/.well-known/apple-developer-merchantid-domain-association"
SHOP = "shop.acme.test"


def proof_upload(institution, *, content=PROOF_BYTES, days_left=365, name="domain file"):
    return services.identity_proof_upload(
        institution=institution,
        name=name,
        content=content,
        expires_at=timezone.now() + timedelta(days=days_left),
        actor=None,
    )


def channel_create(institution, hostname=SHOP, *, apple_pay=True, proof=None, **fields):
    """A channel whose hostname is verified (the file is served only then), unless told."""
    fields.setdefault("hostname_verified_at", timezone.now())
    return SalesChannel.objects.create(
        institution=institution,
        name=hostname,
        hostname=hostname,
        apple_pay_enabled=apple_pay,
        apple_identity_proof=proof,
        **fields,
    )


def fetch(client, host, path=WELL_KNOWN):
    return client.get(path, HTTP_HOST=host)


# --- the well-known file through the host routing ---------------------------------------------


@pytest.mark.django_db
def test_an_enabled_channel_serves_the_exact_bytes_as_plain_text(client, acme):
    proof_upload(acme)
    channel_create(acme)

    response = fetch(client, SHOP)

    assert response.status_code == 200
    assert response.content == PROOF_BYTES  # non-UTF-8 bytes and the trailing newline kept
    assert response["Content-Type"] == "text/plain"
    assert "Location" not in response
    assert b"cert-alert" not in response.content
    assert fetch(client, "SHOP.acme.test:443").content == PROOF_BYTES
    assert client.head(WELL_KNOWN, HTTP_HOST=SHOP).status_code == 200


@pytest.mark.django_db
def test_a_channel_without_apple_pay_serves_nothing(client, acme):
    proof_upload(acme)
    channel_create(acme, apple_pay=False)

    assert fetch(client, SHOP).status_code == 404


@pytest.mark.django_db
def test_another_institutions_proof_is_never_served(client, acme, opera):
    proof_upload(acme)
    channel_create(opera, "tickets.opera.test")  # Apple Pay on, but Opera has no proof

    response = fetch(client, "tickets.opera.test")

    assert response.status_code == 404
    assert PROOF_BYTES not in response.content


@pytest.mark.django_db
def test_an_unknown_host_gets_400_and_the_back_office_404(client, acme):
    proof_upload(acme)
    channel_create(acme)

    assert fetch(client, "unknown.example.net").status_code == 400
    assert fetch(client, "testserver").status_code == 404
    assert client.get(WELL_KNOWN).status_code == 404


@pytest.mark.django_db
def test_an_expired_proof_is_not_served(client, acme):
    proof = proof_upload(acme, days_left=30)
    channel_create(acme)
    assert fetch(client, SHOP).status_code == 200

    with time_machine.travel(proof.expires_at + timedelta(seconds=1)):
        assert fetch(client, SHOP).status_code == 404


@pytest.mark.django_db
def test_the_latest_valid_proof_is_served_and_a_named_one_wins(client, acme):
    named = proof_upload(acme, content=b"chosen for this shop\n", name="psp")
    proof_upload(acme, content=b"latest\n", name="latest")
    channel = channel_create(acme)
    other = channel_create(acme, "other.acme.test", proof=named)

    assert fetch(client, SHOP).content == b"latest\n"
    assert fetch(client, other.hostname).content == b"chosen for this shop\n"

    # The latest expires: the one before it is served again.
    Certificate.objects.filter(name="latest").update(expires_at=timezone.now())
    assert fetch(client, channel.hostname).content == b"chosen for this shop\n"


@pytest.mark.django_db
def test_a_named_proof_that_expired_is_not_replaced_by_another(client, acme):
    named = proof_upload(acme, content=b"psp file\n", name="psp", days_left=10)
    proof_upload(acme, content=b"latest\n", name="latest")
    channel_create(acme, proof=named)

    with time_machine.travel(named.expires_at + timedelta(minutes=1)):
        assert fetch(client, SHOP).status_code == 404


@pytest.mark.django_db
def test_a_named_proof_cannot_be_deleted(client, alice, acme):
    named = proof_upload(acme)
    channel_create(acme, proof=named)
    client.force_login(alice)

    response = client.post(reverse("certificate_delete", args=[named.pk]), follow=True)

    assert f"This certificate is used by {SHOP} ({SHOP})" in page_html(response)
    assert Certificate.objects.filter(pk=named.pk).exists()


# --- the Apple Pay page of a channel ------------------------------------------------------------


def apple_pay_url(channel) -> str:
    return reverse("channel_apple_pay", args=[channel.pk])


@pytest.mark.django_db
def test_a_manager_enables_apple_pay_with_the_latest_proof(client, alice, acme):
    proof = proof_upload(acme, name="Acme domain file")
    channel = channel_create(acme, apple_pay=False)
    client.force_login(alice)
    assert fetch(client, SHOP).status_code == 404

    response = client.post(apple_pay_url(channel), {"apple_pay_enabled": "on"})

    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.apple_pay_enabled and channel.apple_identity_proof is None
    assert fetch(client, SHOP).content == PROOF_BYTES
    event = AuditEvent.objects.get(action=AuditEvent.Action.CHANNEL_APPLE_PAY)
    assert event.actor == alice
    assert event.details["enabled"] is True
    assert event.details["previous"] == {"enabled": False, "identity_proof": None}
    page = page_html(client.get(channel.get_absolute_url()))
    assert f"https://{SHOP}{WELL_KNOWN}" in page
    assert "Latest valid proof: <a" in page and "Acme domain file" in page
    assert "Not checked" in page
    proof_page = page_html(client.get(proof.get_absolute_url()))
    assert f">{SHOP}</a>" in proof_page


@pytest.mark.django_db
def test_a_manager_names_a_proof_and_disables_apple_pay(client, alice, acme):
    proof_upload(acme, content=b"latest\n", name="latest")
    psp = proof_upload(acme, content=b"psp\n", name="psp")
    Certificate.objects.filter(pk=psp.pk).update(created_at=timezone.now() - timedelta(days=1))
    channel = channel_create(acme, apple_pay=False)
    client.force_login(alice)

    client.post(apple_pay_url(channel), {"apple_pay_enabled": "on", "apple_identity_proof": psp.pk})
    assert fetch(client, SHOP).content == b"psp\n"
    assert "psp</a>, expires" in page_html(client.get(channel.get_absolute_url()))

    client.post(apple_pay_url(channel), {})  # the box unticked, no proof named
    channel.refresh_from_db()
    assert not channel.apple_pay_enabled and channel.apple_identity_proof is None
    assert fetch(client, SHOP).status_code == 404


@pytest.mark.django_db
def test_apple_pay_cannot_be_enabled_without_a_valid_proof(client, alice, acme, opera):
    expired = proof_upload(acme, days_left=5)
    opera_proof = proof_upload(opera)
    channel = channel_create(acme, apple_pay=False)
    client.force_login(alice)

    with time_machine.travel(expired.expires_at + timedelta(hours=1)):
        client.force_login(alice)
        nothing = client.post(apple_pay_url(channel), {"apple_pay_enabled": "on"})
        assert "has no valid Apple Pay identity proof" in str(nothing.context["form"].errors)
        chosen = client.post(
            apple_pay_url(channel), {"apple_pay_enabled": "on", "apple_identity_proof": expired.pk}
        )
        assert "This identity proof expired on" in str(chosen.context["form"].errors)
    foreign = client.post(
        apple_pay_url(channel), {"apple_pay_enabled": "on", "apple_identity_proof": opera_proof.pk}
    )
    assert "Select a valid choice" in str(foreign.context["form"].errors)
    channel.refresh_from_db()
    assert not channel.apple_pay_enabled


@pytest.mark.django_db
def test_a_viewer_sees_the_apple_pay_page_but_cannot_change_it(client, bob, acme):
    proof_upload(acme)
    channel = channel_create(acme, apple_pay=False)
    client.force_login(bob)

    page = client.get(apple_pay_url(channel))
    assert page.status_code == 200
    assert "You need the manager role" in page_html(page)
    assert client.post(apple_pay_url(channel), {"apple_pay_enabled": "on"}).status_code == 403
    channel.refresh_from_db()
    assert not channel.apple_pay_enabled


@pytest.mark.django_db
def test_another_institutions_channel_is_a_404(client, charlie, acme):
    channel = channel_create(acme, apple_pay=False)
    client.force_login(charlie)

    assert client.get(apple_pay_url(channel)).status_code == 404
    assert client.post(apple_pay_url(channel), {"apple_pay_enabled": "on"}).status_code == 404


# --- the probe, through a real nginx edge -----------------------------------------------------


class _FixedAnswer(BaseHTTPRequestHandler):
    status = 200
    body = b"someone else's file"
    headers_extra: dict = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(self.status)
        for name, value in self.headers_extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream_answering():
    """An HTTP server answering every request the same way, standing in for the app."""
    servers = []

    def start(status=200, body=b"someone else's file", headers=None) -> str:
        handler = type(
            "Answer",
            (_FixedAnswer,),
            {"status": status, "body": body, "headers_extra": headers or {}},
        )
        server = HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def edge_in_front_of(tmp_path, settings):
    """Start a real nginx edge proxying /.well-known/ (HTTP and HTTPS) to an upstream."""
    require_program("nginx")
    started = []

    def start(upstream: str):
        workdir = tmp_path / f"nginx{len(started)}"
        workdir.mkdir()
        context = nginx_run(edge_dir=tmp_path / "edge", workdir=workdir, acme_upstream=upstream)
        nginx = context.__enter__()
        started.append(context)
        settings.CERTMGR_EDGE_DIR = nginx.edge_dir
        settings.CERTMGR_PROBE_ADDRESS = nginx.address
        settings.CERTMGR_PROBE_TIMEOUT = 5.0
        return nginx

    yield start
    for context in started:
        context.__exit__(None, None, None)


def deployed_channel(acme, make_certificate, hostname=SHOP, **fields):
    certificate = make_certificate(acme, hostnames=[hostname])
    channel = channel_create(
        acme,
        hostname,
        ssl_mode=SalesChannel.SslMode.UPLOADED,
        certificate=certificate,
        active_certificate=certificate,
        **fields,
    )
    edge_channel_deploy(channel)
    return channel


@pytest.mark.django_db(transaction=True)
def test_the_probe_fetches_the_file_through_the_edge_from_the_app(
    live_server, edge_in_front_of, client, alice, acme, make_certificate
):
    edge_in_front_of(live_server.url)
    proof_upload(acme)
    channel = deployed_channel(acme, make_certificate)
    off = deployed_channel(acme, make_certificate, "off.acme.test", apple_pay=False)
    before = timezone.now()

    channel_probe(channel)

    channel.refresh_from_db()
    assert channel.apple_probe_ok is True
    assert channel.apple_probe_failure == ""
    assert channel.apple_probe_checked_at >= before
    assert channel.probe_status == "ok"  # the TLS probe still runs alongside
    off.apple_probe_ok = False
    off.save()
    channels_probe()
    off.refresh_from_db()
    assert off.apple_probe_ok is None  # Apple Pay off: nothing to check
    client.force_login(alice)
    page = page_html(client.get(channel.get_absolute_url()))
    assert "Fetched</span> the edge serves the identity proof" in page


@pytest.mark.django_db(transaction=True)
def test_the_probe_reports_other_content_a_redirect_and_a_404(
    edge_in_front_of, upstream_answering, acme, make_certificate
):
    proof_upload(acme)
    channel = deployed_channel(acme, make_certificate)

    edge_in_front_of(upstream_answering(body=b"someone else's file"))
    channel_probe(channel)
    channel.refresh_from_db()
    assert channel.apple_probe_ok is False
    assert channel.apple_probe_failure == ProbeFailure.OTHER_CONTENT
    assert channel.apple_probe_explanation == (
        "The URL serves other content than the identity proof."
    )

    edge_in_front_of(upstream_answering(status=301, body=b"", headers={"Location": "/x"}))
    channel_probe(channel)
    channel.refresh_from_db()
    assert channel.apple_probe_failure == ProbeFailure.REDIRECT

    edge_in_front_of(upstream_answering(status=404, body=b"Not found."))
    channel_probe(channel)
    channel.refresh_from_db()
    assert channel.apple_probe_failure == ProbeFailure.FILE_MISSING

    edge_in_front_of(upstream_answering(status=500, body=b"Oops."))
    channel_probe(channel)
    channel.refresh_from_db()
    assert channel.apple_probe_failure == ProbeFailure.HTTP_ERROR


@pytest.mark.django_db(transaction=True)
def test_the_probe_explains_a_failed_handshake_and_a_missing_proof(
    live_server, edge_in_front_of, acme, make_certificate, caplog
):
    nginx = edge_in_front_of(live_server.url)
    proof = proof_upload(acme)
    channel = channel_create(acme)  # Apple Pay on, but no certificate on the edge

    channel_probe(channel)
    channel.refresh_from_db()
    assert channel.apple_probe_ok is False
    assert channel.apple_probe_failure == ProbeFailure.NO_CERTIFICATE
    assert channel.apple_probe_explanation == (
        "Could not fetch the file: the server has no usable certificate for this name."
    )
    assert f"TLS handshake for {SHOP} at {nginx.address}" in caplog.text  # the details

    Certificate.objects.filter(pk=proof.pk).update(expires_at=timezone.now())
    channel_probe(channel)
    channel.refresh_from_db()
    assert channel.apple_probe_failure == ProbeFailure.NO_PROOF
    assert channel.apple_probe_explanation == (
        "No valid identity proof to serve: upload the institution's domain-association file."
    )


@pytest.mark.django_db(transaction=True)
def test_probe_channels_prints_the_apple_pay_result(
    live_server, edge_in_front_of, acme, make_certificate
):
    edge_in_front_of(live_server.url)
    proof_upload(acme)
    deployed_channel(acme, make_certificate)
    out = StringIO()

    call_command("probe_channels", stdout=out)

    assert out.getvalue().splitlines() == [
        f"{SHOP} ok",
        f"{SHOP} apple-pay ok",
        "1 ok, 0 mismatch, 0 expired, 0 failed",
    ]
