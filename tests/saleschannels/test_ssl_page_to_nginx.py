"""End to end through the real things: the SSL Management page deploys to the edge folder, a
real nginx serves it over TLS with SNI, and the live probe sees what is served."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from certmgr import demo_pki
from saleschannels.models import ProbeStatus, SalesChannel
from saleschannels.probe import ProbeError, certificate_fingerprint, channel_probe
from tests.nginx import served_certificate

pytestmark = pytest.mark.django_db

HOSTNAME = "shop.acme.test"


@pytest.fixture
def channel(acme):
    return SalesChannel.objects.create(institution=acme, name="Main shop", hostname=HOSTNAME)


def served_fingerprint(nginx) -> str:
    return certificate_fingerprint(served_certificate(nginx.address, HOSTNAME))


def test_the_ssl_page_drives_what_nginx_serves_without_a_reload(
    client, alice, acme, channel, make_certificate, nginx_edge
):
    first = make_certificate(acme, name="first", hostnames=[HOSTNAME])
    second = make_certificate(acme, name="second", hostnames=["*.acme.test"])
    client.force_login(alice)
    ssl_page = reverse("channel_ssl", args=[channel.pk])
    pid = nginx_edge.pid
    workers = nginx_edge.worker_pids

    client.post(ssl_page, {"mode": "uploaded", "certificate": first.pk})
    assert served_fingerprint(nginx_edge) == first.fingerprint_sha256

    client.post(ssl_page, {"mode": "uploaded", "certificate": second.pk})
    assert served_fingerprint(nginx_edge) == second.fingerprint_sha256
    # The same nginx, never reloaded: same master and the same worker processes.
    assert nginx_edge.pid == pid and nginx_edge.worker_pids == workers

    client.post(ssl_page, {"mode": "none"})
    assert not any(nginx_edge.edge_dir.glob(f"{HOSTNAME}.*"))
    with pytest.raises(ProbeError):
        served_certificate(nginx_edge.address, HOSTNAME)


def test_the_probe_reports_match_then_mismatch_after_files_change_behind_its_back(
    client, alice, acme, channel, make_certificate, nginx_edge
):
    certificate = make_certificate(acme, hostnames=[HOSTNAME])
    client.force_login(alice)
    client.post(
        reverse("channel_ssl", args=[channel.pk]),
        {"mode": "uploaded", "certificate": certificate.pk},
    )
    channel.refresh_from_db()
    assert channel_probe(channel) == ProbeStatus.OK
    assert channel.probe_fingerprint == certificate.fingerprint_sha256

    # Someone copies another certificate onto the edge by hand.
    intruder = demo_pki.ssl_chain_create(hostnames=[HOSTNAME])[2]
    (nginx_edge.edge_dir / f"{HOSTNAME}.key").write_bytes(intruder.key_pem)
    (nginx_edge.edge_dir / f"{HOSTNAME}.crt").write_bytes(intruder.certificate_pem)
    channel.refresh_from_db()
    assert channel_probe(channel) == ProbeStatus.MISMATCH

    page = client.get(channel.get_absolute_url()).content.decode()
    assert "serves another certificate than the active one" in page
    assert 'class="cert-alert" data-level="expired" data-count="1"' in page

    # deploy_edge --verify puts the right files back, and the probe agrees again.
    call_command("deploy_edge", "--verify")
    assert channel_probe(channel) == ProbeStatus.OK
