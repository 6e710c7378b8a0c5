"""manage.py seed_demo: the demo data `make run` loads."""

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from certificates.models import Certificate, CertificateStatus
from core.models import AuditEvent
from institutions.models import Institution, Membership
from saleschannels.models import SalesChannel
from saleschannels.probe import channels_probe
from tests.saleschannels.test_edge import assert_serves


def test_it_loads_each_status_once_per_institution_and_is_idempotent(db, capsys):
    call_command("seed_demo")
    call_command("seed_demo")

    assert Institution.objects.count() == 2
    assert Membership.objects.filter(role="manager").count() == 2
    assert Membership.objects.filter(role="viewer").count() == 2
    assert SalesChannel.objects.count() == 3
    # Each serves its uploaded certificate, and says so (one status per channel).
    assert set(SalesChannel.objects.values_list("status", flat=True)) == {"uploaded"}
    statuses = Certificate.objects.with_status(timezone.now()).values_list("status", flat=True)
    assert sorted(statuses) == sorted(
        [
            CertificateStatus.VALID,
            CertificateStatus.EXPIRING,
            CertificateStatus.CRITICAL,
            CertificateStatus.EXPIRED,
        ]
        * 2
    )
    assert all(certificate.has_private_key for certificate in Certificate.objects.all())
    output = capsys.readouterr().out
    assert "alice" in output and "certmgr-demo" in output


def test_its_channels_are_deployed_to_the_edge_as_a_save_would_deploy_them(db, settings):
    call_command("seed_demo")

    channels = SalesChannel.objects.select_related("active_certificate")
    assert channels.count() == 3
    for channel in channels:
        assert_serves(settings.CERTMGR_EDGE_DIR, channel.hostname, channel.active_certificate)
        assert channel.edge_deployed_at is not None
    # Through the SSL Management service: the audit trail says so, as after a manager's save.
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CHANNEL_SSL_MODE).count() == 3


def test_its_channel_page_says_when_it_was_deployed_and_not_yet_verified(db, client):
    call_command("seed_demo")
    client.force_login(get_user_model().objects.get(username="alice"))
    channel = SalesChannel.objects.get(hostname="shop.acme-tickets.test")

    page = client.get(channel.get_absolute_url()).content.decode()

    deployed = channel.edge_deployed_at.strftime("%Y-%m-%d %H:%M")
    assert f"Last deployed {deployed} UTC" in page
    assert "not verified by the probe yet" in page


def test_behind_a_real_edge_its_channels_show_green(db, client, nginx_edge):
    """What `make run` does: nginx serves the edge folder and the probe connects to it."""
    call_command("seed_demo")

    assert channels_probe() == {"ok": 3, "mismatch": 0, "expired": 0, "failed": 0}
    channel = SalesChannel.objects.get(hostname="shop.acme-tickets.test")
    client.force_login(get_user_model().objects.get(username="alice"))
    page = client.get(channel.get_absolute_url()).content.decode()
    verified = channel.probe_verified_at.strftime("%Y-%m-%d %H:%M")
    assert f"last verified by the probe {verified} UTC" in page
    assert "Serving it" in page
