"""manage.py deploy_edge: resync the edge directory and say what changed."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from saleschannels.models import SalesChannel

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel_with(acme):
    def make(certificate, *, name="Acme shop"):
        return SalesChannel.objects.create(
            institution=acme,
            name=name,
            hostname=certificate.domains[0],
            ssl_mode=SalesChannel.SslMode.UPLOADED,
            certificate=certificate,
            active_certificate=certificate,
        )

    return make


def deploy_edge(*args) -> list[str]:
    out = StringIO()
    call_command("deploy_edge", *args, stdout=out)
    return out.getvalue().splitlines()


def test_it_prints_each_change_and_a_summary_then_up_to_date(
    settings, make_certificate, acme, channel_with
):
    channel_with(make_certificate(acme, hostnames=["a.example.test"]))
    channel_with(make_certificate(acme, hostnames=["b.example.test"]))
    plain = channel_with(make_certificate(acme, hostnames=["c.example.test"]))

    assert deploy_edge() == [
        "written a.example.test",
        "written b.example.test",
        "written c.example.test",
        "3 written, 0 removed, 0 unchanged",
    ]
    assert deploy_edge() == ["Edge directory is up to date (3 channels)"]

    plain.ssl_mode = SalesChannel.SslMode.NONE
    plain.save()
    renewed = make_certificate(acme, name="renewed", hostnames=["b.example.test"])
    SalesChannel.objects.filter(hostname="b.example.test").update(active_certificate=renewed)

    assert deploy_edge() == [
        "removed c.example.test",
        "written b.example.test",
        "1 written, 1 removed, 1 unchanged",
    ]
    assert sorted(p.name for p in settings.CERTMGR_EDGE_DIR.glob("*.crt")) == [
        "a.example.test.crt",
        "b.example.test.crt",
    ]


def test_verify_repairs_what_the_fast_path_cannot_see(
    settings, make_certificate, acme, channel_with
):
    channel_with(make_certificate(acme, hostnames=["a.example.test"]))
    deploy_edge()
    (settings.CERTMGR_EDGE_DIR / "a.example.test.crt").write_text("damaged\n")

    assert deploy_edge() == ["Edge directory is up to date (1 channel)"]
    assert deploy_edge("--verify") == [
        "written a.example.test",
        "1 written, 0 removed, 0 unchanged",
    ]
    assert "damaged" not in (settings.CERTMGR_EDGE_DIR / "a.example.test.crt").read_text()


def test_an_empty_database_is_up_to_date():
    assert deploy_edge() == ["Edge directory is up to date (0 channels)"]


def test_an_undecryptable_key_is_reported_and_the_command_fails(
    make_certificate, acme, channel_with
):
    channel_with(make_certificate(acme, hostnames=["a.example.test"]))
    broken = make_certificate(acme, hostnames=["b.example.test"])
    channel_with(broken)
    broken.private_key_encrypted = "gAAAAAnot-a-token"
    broken.save()
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="Could not deploy 1 hostname\\(s\\): b.example.test"):
        call_command("deploy_edge", stdout=out, stderr=err)

    assert out.getvalue().splitlines() == [
        "written a.example.test",
        "1 written, 0 removed, 0 unchanged",
    ]
    assert "failed b.example.test: the private key cannot be decrypted" in err.getvalue()
