"""manage.py deploy_edge: resync the edge directory and say what changed."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, ManagementUtility, call_command

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


def command_line(*args) -> None:
    """`manage.py <args>` as an operator runs it (exit status included), in this process;
    Django is set up already, so the test's log capture stays in place."""
    argv = ["manage.py", *args]
    ManagementUtility(argv).fetch_command(args[0]).run_from_argv(argv)


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
        "1 written, 0 removed, 0 unchanged, 1 failed",
    ]
    assert "failed b.example.test: the private key cannot be decrypted" in err.getvalue()


# 253 characters: a valid DNS name, but "<hostname>.key" would be 257 bytes, over the 255 a
# file name may have. Stored before the 251-character rule, as an old row would be.
OVERLONG = ".".join(["a" * 63] * 3 + ["b" * 56, "test"])


# Transactional: the command line closes the database connections when it is done.
@pytest.mark.django_db(transaction=True)
def test_an_overlong_stored_hostname_fails_alone_after_every_other_channel_is_deployed(
    settings, make_certificate, acme, channel_with, capsys, caplog
):
    assert len(OVERLONG) == 253
    channel_with(make_certificate(acme, hostnames=["a.example.test"]))
    overlong = channel_with(make_certificate(acme, hostnames=["long.example.test"]))
    SalesChannel.objects.filter(pk=overlong.pk).update(hostname=OVERLONG)  # sorts after a.
    channel_with(make_certificate(acme, hostnames=["b.example.test"]))
    channel_with(make_certificate(acme, hostnames=["c.example.test"]))

    with pytest.raises(SystemExit) as exited:
        command_line("deploy_edge")

    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "written a.example.test",
        "written b.example.test",
        "written c.example.test",
        "3 written, 0 removed, 0 unchanged, 1 failed",
    ]
    assert (
        f"failed {OVERLONG}: the hostname has 253 characters, too long for the edge's file "
        "names (at most 251)"
    ) in err.splitlines()
    assert f"Could not deploy 1 hostname(s): {OVERLONG}" in err
    assert f"edge: {OVERLONG} not deployed: the hostname has 253 characters" in caplog.text
    edge = settings.CERTMGR_EDGE_DIR
    assert sorted(p.name for p in edge.glob("*.key")) == [
        "a.example.test.key",
        "b.example.test.key",
        "c.example.test.key",
    ]
    manifest = json.loads((edge / ".certmgr-manifest.json").read_text())["deployed"]
    assert sorted(manifest) == ["a.example.test", "b.example.test", "c.example.test"]

    # The next run has nothing else to do, and still names the failure.
    with pytest.raises(SystemExit) as exited:
        command_line("deploy_edge")
    assert exited.value.code == 1
    assert capsys.readouterr().out.splitlines() == ["0 written, 0 removed, 3 unchanged, 1 failed"]


def test_a_hostname_whose_files_cannot_be_written_fails_alone(
    settings, make_certificate, acme, channel_with
):
    channel_with(make_certificate(acme, hostnames=["a.example.test"]))
    channel_with(make_certificate(acme, hostnames=["b.example.test"]))
    channel_with(make_certificate(acme, hostnames=["c.example.test"]))
    # A directory where b's key belongs: os.replace() onto it fails (EISDIR), as a file
    # system refusing one name would.
    settings.CERTMGR_EDGE_DIR.mkdir()
    (settings.CERTMGR_EDGE_DIR / "b.example.test.key").mkdir()
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="Could not deploy 1 hostname\\(s\\): b.example.test"):
        call_command("deploy_edge", stdout=out, stderr=err)

    assert out.getvalue().splitlines() == [
        "written a.example.test",
        "written c.example.test",
        "2 written, 0 removed, 0 unchanged, 1 failed",
    ]
    assert err.getvalue().startswith("failed b.example.test: Is a directory")
    assert not list(settings.CERTMGR_EDGE_DIR.glob(".certmgr-tmp-*"))  # nothing left behind


def test_an_unusable_edge_folder_is_one_plain_error(settings, tmp_path):
    settings.CERTMGR_EDGE_DIR = tmp_path / "a-file"
    settings.CERTMGR_EDGE_DIR.write_text("not a folder")

    with pytest.raises(CommandError, match="The edge folder .*a-file cannot be used: "):
        deploy_edge()
