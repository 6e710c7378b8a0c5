"""Deployment to the TLS edge directory (saleschannels/edge.py), and a real nginx serving it."""

import errno
import hmac
import http.client
import json
import logging
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from saleschannels import edge
from saleschannels.edge import (
    EdgeChange,
    edge_channel_deploy,
    edge_hostname_remove,
    edge_sync,
)
from saleschannels.hostnames import MAX_LENGTH
from saleschannels.models import SalesChannel
from saleschannels.probe import ProbeError, certificate_fingerprint
from tests.nginx import (
    http_paths,
    nginx_program,
    nginx_run,
    served_certificate,
    sni_handshake_raw,
)
from tests.support import require_program

pytestmark = pytest.mark.django_db

HOST = "shop.example.test"


@pytest.fixture
def edge_dir(settings, tmp_path):
    settings.CERTMGR_EDGE_DIR = tmp_path / "edge"
    return settings.CERTMGR_EDGE_DIR


@pytest.fixture
def channel_with(acme):
    """A sales channel serving `certificate` (uploaded mode), by default on its first domain."""

    def make(certificate, *, hostname=None, name="Acme shop"):
        return SalesChannel.objects.create(
            institution=acme,
            name=name,
            hostname=hostname or certificate.domains[0],
            ssl_mode=SalesChannel.SslMode.UPLOADED,
            certificate=certificate,
            active_certificate=certificate,
        )

    return make


def files(directory) -> list[str]:
    return sorted(os.listdir(directory))


def host_files(directory) -> list[str]:
    """The .crt/.key files: what nginx looks at."""
    return [name for name in files(directory) if name.endswith((".crt", ".key"))]


def assert_serves(directory, hostname, certificate):
    """The edge files of `hostname` hold `certificate`'s bundle and its key (mode 0600)."""
    crt = directory / f"{hostname}.crt"
    key = directory / f"{hostname}.key"
    assert crt.read_text() == certificate.public_bundle_pem()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Compared through the public half and a constant-time equality: a failure never prints
    # key bytes.
    leaf = x509.load_pem_x509_certificate(crt.read_bytes())
    served_key = load_pem_private_key(key.read_bytes(), password=None)
    assert served_key.public_key().public_numbers() == leaf.public_key().public_numbers()
    same_key = hmac.compare_digest(key.read_bytes(), certificate.private_key_pem().encode())
    assert same_key, f"{key.name} does not hold the certificate's key"


def pair_plant_outside(edge_dir: Path, certificate) -> None:
    """A certificate pair beside the edge folder, and a subfolder "sub" to climb out through:
    SNI "sub/../../outside" names it (Python refuses to send a leading dot, an attacker's
    client would not, so the climb goes through a folder)."""
    (edge_dir.parent / "outside.crt").write_text(certificate.public_bundle_pem())
    key = edge_dir.parent / "outside.key"
    key.touch(mode=0o600)
    key.write_text(certificate.private_key_pem())
    (edge_dir / "sub").mkdir()


def _manifest(directory) -> dict:
    return json.loads((directory / ".certmgr-manifest.json").read_text())["deployed"]


def test_channel_deploy_writes_bundle_and_key_0600_and_creates_the_directory(
    edge_dir, make_certificate, acme, channel_with
):
    certificate = make_certificate(acme, hostnames=[HOST])
    channel = channel_with(certificate)
    assert not edge_dir.exists()

    changes = edge_channel_deploy(channel)

    assert changes == [EdgeChange(HOST, "written")]
    assert stat.S_IMODE(edge_dir.stat().st_mode) in (0o700, 0o750)
    assert_serves(edge_dir, HOST, certificate)
    # leaf + intermediate: nginx must send the chain
    assert (edge_dir / f"{HOST}.crt").read_text().count("BEGIN CERTIFICATE") == 2
    assert host_files(edge_dir) == [f"{HOST}.crt", f"{HOST}.key"]


def test_a_renewal_that_keeps_its_key_replaces_the_crt_and_never_touches_the_key(
    edge_dir, make_certificate, acme, channel_with
):
    first = make_certificate(acme, hostnames=[HOST])
    channel = channel_with(first)
    edge_channel_deploy(channel)
    key_path = edge_dir / f"{HOST}.key"
    before = key_path.stat()
    key = load_pem_private_key(first.private_key_pem().encode(), password=None)
    renewed = make_certificate(acme, hostnames=[HOST], key=key, replaces=first)
    SalesChannel.objects.filter(pk=channel.pk).update(active_certificate=renewed)

    assert edge_channel_deploy(channel) == [EdgeChange(HOST, "written")]

    assert_serves(edge_dir, HOST, renewed)
    # The same file, never renamed over nor rewritten: nginx's two opens of a handshake
    # (README, "Edge and probe") always find the key of whichever .crt they read.
    after = key_path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )


def test_a_new_key_replaces_the_key_file(edge_dir, make_certificate, acme, channel_with):
    first = make_certificate(acme, hostnames=[HOST])
    channel = channel_with(first)
    edge_channel_deploy(channel)
    inode = (edge_dir / f"{HOST}.key").stat().st_ino
    rotated = make_certificate(acme, hostnames=[HOST], replaces=first)
    SalesChannel.objects.filter(pk=channel.pk).update(active_certificate=rotated)

    edge_channel_deploy(channel)

    assert_serves(edge_dir, HOST, rotated)
    assert (edge_dir / f"{HOST}.key").stat().st_ino != inode


def test_sync_keeps_a_key_file_that_holds_the_right_key(
    edge_dir, make_certificate, acme, channel_with
):
    first = make_certificate(acme, hostnames=[HOST])
    channel = channel_with(first)
    edge_sync()
    inode = (edge_dir / f"{HOST}.key").stat().st_ino
    key = load_pem_private_key(first.private_key_pem().encode(), password=None)
    renewed = make_certificate(acme, hostnames=[HOST], key=key, replaces=first)
    SalesChannel.objects.filter(pk=channel.pk).update(active_certificate=renewed)

    assert edge_sync() == [EdgeChange(HOST, "written")]

    assert_serves(edge_dir, HOST, renewed)
    assert (edge_dir / f"{HOST}.key").stat().st_ino == inode


def test_each_write_records_when_the_channel_was_deployed(
    edge_dir, make_certificate, acme, channel_with
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    other = channel_with(make_certificate(acme, hostnames=["other.example.test"]))
    assert channel.edge_deployed_at is None

    edge_channel_deploy(channel)
    channel.refresh_from_db()
    first = channel.edge_deployed_at
    assert first is not None

    (edge_dir / f"{HOST}.crt").unlink()  # gone behind its back: the sync writes it again
    edge_sync()

    channel.refresh_from_db()
    other.refresh_from_db()
    assert channel.edge_deployed_at > first
    assert other.edge_deployed_at is not None
    deployed = channel.edge_deployed_at
    edge_sync()  # nothing to write: the times stay
    channel.refresh_from_db()
    assert channel.edge_deployed_at == deployed


def test_channel_deploy_skips_what_the_manifest_says_is_in_place(
    edge_dir, make_certificate, acme, channel_with, django_assert_num_queries
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_channel_deploy(channel)
    written_at = (edge_dir / f"{HOST}.key").stat().st_mtime_ns

    with django_assert_num_queries(1):  # the channel, read again under the lock
        assert edge_channel_deploy(channel) == []
    assert (edge_dir / f"{HOST}.key").stat().st_mtime_ns == written_at

    (edge_dir / f"{HOST}.crt").unlink()  # gone behind its back: written again
    assert edge_channel_deploy(channel) == [EdgeChange(HOST, "written")]
    assert (edge_dir / f"{HOST}.crt").exists()


def test_a_stale_copy_of_the_channel_does_not_undo_a_newer_deployment(
    edge_dir, make_certificate, acme, channel_with
):
    first = make_certificate(acme, name="first", hostnames=[HOST])
    second = make_certificate(acme, name="second", hostnames=[HOST])
    stale = channel_with(first)
    # Meanwhile a worker switched the channel to a new certificate and deployed it.
    fresh = SalesChannel.objects.get(pk=stale.pk)
    fresh.certificate = fresh.active_certificate = second
    fresh.save()
    edge_channel_deploy(fresh)
    served = (edge_dir / f"{HOST}.crt").read_bytes()
    assert edge_channel_deploy(stale) == []  # the older copy deploys what the database says
    assert (edge_dir / f"{HOST}.crt").read_bytes() == served
    assert second.certificate_pem.encode() in served


def test_channel_deploy_writes_the_new_certificate_when_the_channel_switches(
    edge_dir, make_certificate, acme, channel_with
):
    first = make_certificate(acme, name="first", hostnames=[HOST])
    second = make_certificate(acme, name="second", hostnames=[HOST])
    channel = channel_with(first)
    edge_channel_deploy(channel)

    channel.certificate = channel.active_certificate = second
    channel.save()
    assert edge_channel_deploy(channel) == [EdgeChange(HOST, "written")]

    assert_serves(edge_dir, HOST, second)


@pytest.mark.parametrize("change", ["no active certificate", "ssl mode none", "key removed"])
def test_channel_deploy_removes_the_files_when_nothing_is_to_be_served(
    change, edge_dir, make_certificate, acme, channel_with
):
    certificate = make_certificate(acme, hostnames=[HOST])
    channel = channel_with(certificate)
    edge_channel_deploy(channel)
    if change == "no active certificate":
        channel.active_certificate = None
    elif change == "ssl mode none":
        channel.ssl_mode = SalesChannel.SslMode.NONE
    else:
        certificate.private_key_set(None)
        certificate.save()
    channel.save()

    assert edge_channel_deploy(channel) == [EdgeChange(HOST, "removed")]

    assert host_files(edge_dir) == []
    assert edge_channel_deploy(channel) == []  # nothing left to remove


def test_hostname_remove_removes_a_deleted_channels_files(
    edge_dir, make_certificate, acme, channel_with
):
    other = channel_with(make_certificate(acme, hostnames=["other.example.test"]), name="other")
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_channel_deploy(channel)
    edge_channel_deploy(other)
    channel.delete()

    assert edge_hostname_remove(HOST) == [EdgeChange(HOST, "removed")]

    assert host_files(edge_dir) == ["other.example.test.crt", "other.example.test.key"]
    assert edge_hostname_remove(HOST) == []
    assert HOST not in _manifest(edge_dir)


@pytest.mark.parametrize("hostname", ["../evil.example.test", "a/b.example.test", ".hidden", ""])
def test_unsafe_hostnames_are_refused(hostname, edge_dir, make_certificate, acme):
    certificate = make_certificate(acme, hostnames=[HOST])
    channel = SalesChannel(
        institution=acme,
        name="bad",
        hostname=hostname,
        ssl_mode=SalesChannel.SslMode.UPLOADED,
        active_certificate=certificate,
    )

    with pytest.raises(ValueError, match="unsafe hostname"):
        edge_channel_deploy(channel)
    with pytest.raises(ValueError, match="unsafe hostname"):
        edge_hostname_remove(hostname)

    assert not (edge_dir.parent / "evil.example.test.key").exists()
    assert not edge_dir.exists()  # refused before anything was touched


# The longest hostname certmgr accepts (saleschannels/hostnames.py), and a valid DNS name two
# characters longer, stored before that rule, whose "<hostname>.key" would not fit a file name.
LONGEST = ".".join(["a" * 63] * 3 + ["b" * 54, "test"])
OVERLONG = ".".join(["a" * 63] * 3 + ["b" * 56, "test"])


def test_the_longest_accepted_hostname_is_written_on_the_real_file_system(
    edge_dir, make_certificate, acme, channel_with
):
    assert len(LONGEST) == MAX_LENGTH
    certificate = make_certificate(acme, hostnames=[HOST])
    channel_with(certificate, hostname=LONGEST)

    assert edge_sync() == [EdgeChange(LONGEST, "written")]

    assert_serves(edge_dir, LONGEST, certificate)


def test_an_overlong_stored_hostname_is_refused_before_any_file_is_touched(
    edge_dir, make_certificate, acme, channel_with
):
    assert len(OVERLONG) == 253
    channel = channel_with(make_certificate(acme, hostnames=[HOST]), hostname=OVERLONG)

    with pytest.raises(OSError, match="253 characters, too long") as raised:
        edge_channel_deploy(channel)

    assert raised.value.errno == errno.ENAMETOOLONG
    assert not edge_dir.exists()
    assert edge_hostname_remove(OVERLONG) == []  # no file can have that name: nothing to do


def test_sync_reports_an_unsafe_hostname_in_the_database_and_deploys_the_others(
    edge_dir, make_certificate, acme, channel_with, caplog
):
    channel_with(make_certificate(acme, hostnames=[HOST]))
    bad = channel_with(make_certificate(acme, hostnames=["x.example.test"]), hostname="x.test")
    # Past the model's validation, as a corrupt row or a raw SQL edit would be.
    SalesChannel.objects.filter(pk=bad.pk).update(hostname="../x.example.test")

    with pytest.raises(edge.EdgeSyncError) as raised:
        edge_sync()

    assert raised.value.changes == [EdgeChange(HOST, "written")]
    assert list(raised.value.failures) == ["../x.example.test"]
    assert host_files(edge_dir) == [f"{HOST}.crt", f"{HOST}.key"]
    assert not (edge_dir.parent / "x.example.test.key").exists()
    assert "../x.example.test not deployed: refusing unsafe hostname" in caplog.text


def test_sync_writes_rewrites_removes_and_leaves_other_files_alone(
    edge_dir, make_certificate, acme, opera, channel_with
):
    shop = channel_with(make_certificate(acme, hostnames=[HOST]))
    kept = channel_with(make_certificate(acme, hostnames=["kept.example.test"]), name="kept")
    switched = channel_with(make_certificate(opera, hostnames=["opera.example.test"]), name="op")
    none_mode = channel_with(make_certificate(acme, hostnames=["plain.example.test"]), name="p")
    assert {c.hostname for c in edge_sync()} == {
        HOST,
        "kept.example.test",
        "opera.example.test",
        "plain.example.test",
    }
    edge_dir.joinpath("README.txt").write_text("not ours")
    edge_dir.joinpath("default.conf.key.bak").write_text("not ours either")
    edge_dir.joinpath("gone.example.test.crt").write_text("left by a deleted channel")
    edge_dir.joinpath("gone.example.test.key").write_text("left by a deleted channel")
    (edge_dir / f"{HOST}.key").unlink()  # deleted behind its back
    replacement = make_certificate(opera, name="renewed", hostnames=["opera.example.test"])
    switched.certificate = switched.active_certificate = replacement
    switched.save()
    none_mode.ssl_mode = SalesChannel.SslMode.NONE
    none_mode.save()
    fresh = channel_with(make_certificate(acme, hostnames=["new.example.test"]), name="new")

    changes = edge_sync()

    assert sorted(changes, key=lambda c: (c.action, c.hostname)) == [
        EdgeChange("gone.example.test", "removed"),
        EdgeChange("plain.example.test", "removed"),
        EdgeChange("new.example.test", "written"),
        EdgeChange("opera.example.test", "written"),
        EdgeChange(HOST, "written"),
    ]
    assert files(edge_dir) == sorted(
        [
            ".certmgr-lock",
            ".certmgr-manifest.json",
            "README.txt",
            "default.conf.key.bak",
            "kept.example.test.crt",
            "kept.example.test.key",
            "new.example.test.crt",
            "new.example.test.key",
            "opera.example.test.crt",
            "opera.example.test.key",
            f"{HOST}.crt",
            f"{HOST}.key",
        ]
    )
    assert_serves(edge_dir, "opera.example.test", replacement)
    for channel in (shop, kept, fresh):
        channel.refresh_from_db()
        assert_serves(edge_dir, channel.hostname, channel.active_certificate)
    assert _manifest(edge_dir) == {
        c.hostname: c.active_certificate.fingerprint_sha256
        for c in SalesChannel.objects.exclude(ssl_mode="none")
    }
    assert edge_sync() == []


def test_sync_of_an_unchanged_directory_is_one_query_and_no_write(
    edge_dir, make_certificate, acme, channel_with, django_assert_num_queries
):
    for index in range(5):
        hostname = f"shop{index}.example.test"
        channel_with(make_certificate(acme, hostnames=[hostname]), hostname=hostname)
    edge_sync()
    before = {name: (edge_dir / name).stat().st_mtime_ns for name in files(edge_dir)}

    with django_assert_num_queries(1):
        assert edge_sync() == []

    assert {name: (edge_dir / name).stat().st_mtime_ns for name in files(edge_dir)} == before


def test_sync_fetches_and_decrypts_only_what_it_writes(
    edge_dir, make_certificate, acme, channel_with, django_assert_num_queries, monkeypatch
):
    channels = [
        channel_with(make_certificate(acme, hostnames=[h]), hostname=h)
        for h in ("a.example.test", "b.example.test", "c.example.test")
    ]
    edge_sync()
    channels[1].active_certificate = make_certificate(acme, hostnames=["b.example.test"])
    channels[1].save()
    decrypted = []
    real_decrypt = edge.Certificate.private_key_pem
    monkeypatch.setattr(
        edge.Certificate,
        "private_key_pem",
        lambda self: decrypted.append(self.pk) or real_decrypt(self),
    )

    # The channel list, the one certificate to write, then when its channel was deployed.
    with django_assert_num_queries(3):
        assert edge_sync() == [EdgeChange("b.example.test", "written")]

    assert decrypted == [channels[1].active_certificate_id]


def test_sync_verify_repairs_a_file_damaged_behind_its_back(
    edge_dir, make_certificate, acme, channel_with
):
    certificate = make_certificate(acme, hostnames=[HOST])
    channel_with(certificate)
    edge_sync()
    crt = edge_dir / f"{HOST}.crt"
    crt.write_bytes(crt.read_bytes()[:100])  # truncated, same name, manifest unchanged
    (edge_dir / f"{HOST}.key").chmod(0o644)

    assert edge_sync() == []  # the fast path does not read contents
    assert edge_sync(verify=True) == [EdgeChange(HOST, "written")]

    assert_serves(edge_dir, HOST, certificate)
    assert edge_sync(verify=True) == []


def test_sync_rewrites_everything_when_the_manifest_is_lost_or_corrupt(
    edge_dir, make_certificate, acme, channel_with
):
    channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_sync()
    (edge_dir / ".certmgr-manifest.json").write_text("{not json")

    assert edge_sync() == [EdgeChange(HOST, "written")]
    (edge_dir / ".certmgr-manifest.json").unlink()
    assert edge_sync() == [EdgeChange(HOST, "written")]
    assert edge_sync() == []


def test_no_temporary_file_is_left_behind_even_when_a_write_fails(
    edge_dir, make_certificate, acme, channel_with, monkeypatch
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_sync()
    assert [name for name in files(edge_dir) if name.startswith(".certmgr-tmp-")] == []
    channel.active_certificate = make_certificate(acme, hostnames=[HOST])
    channel.save()

    def replace_fails(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edge.os, "replace", replace_fails)
    with pytest.raises(OSError, match="No space left"):
        edge_channel_deploy(channel)

    assert [name for name in files(edge_dir) if name.startswith(".certmgr-tmp-")] == []


def test_an_abandoned_temporary_file_is_swept_by_the_next_sync(edge_dir):
    edge_dir.mkdir()
    abandoned = edge_dir / ".certmgr-tmp-crashed"
    recent = edge_dir / ".certmgr-tmp-in-progress"
    abandoned.write_text("x")
    recent.write_text("x")
    os.utime(abandoned, (0, 0))

    edge_sync()

    assert not abandoned.exists()
    assert recent.exists()  # may belong to a writer that is still running


def test_an_undecryptable_key_fails_loudly_after_the_others_are_deployed(
    edge_dir, make_certificate, acme, channel_with
):
    good = channel_with(make_certificate(acme, hostnames=[HOST]))
    broken_certificate = make_certificate(acme, hostnames=["broken.example.test"])
    channel_with(broken_certificate, hostname="broken.example.test", name="broken")
    broken_certificate.private_key_encrypted = "gAAAAAnot-a-token"
    broken_certificate.save()

    with pytest.raises(edge.EdgeSyncError) as raised:
        edge_sync()

    assert raised.value.changes == [EdgeChange(HOST, "written")]
    assert list(raised.value.failures) == ["broken.example.test"]
    assert host_files(edge_dir) == [f"{HOST}.crt", f"{HOST}.key"]
    assert_serves(edge_dir, HOST, good.active_certificate)


def test_changes_are_logged_by_hostname_without_key_material(
    edge_dir, make_certificate, acme, channel_with, caplog
):
    caplog.set_level(logging.DEBUG, logger="saleschannels.edge")
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_sync()
    channel.ssl_mode = SalesChannel.SslMode.NONE
    channel.save()
    edge_sync()

    lines = [record.getMessage() for record in caplog.records]
    assert [line.split()[:3] for line in lines] == [
        ["edge:", "wrote", HOST],
        ["edge:", "removed", HOST],
    ]
    assert "PRIVATE KEY" not in caplog.text


# --- with a real nginx ---------------------------------------------------------------------


def test_nginx_serves_the_deployed_certificate_and_the_next_one_without_reload(
    nginx_edge, make_certificate, acme, channel_with
):
    first = make_certificate(acme, name="first", hostnames=[HOST])
    second = make_certificate(acme, name="second", hostnames=[HOST])
    channel = channel_with(first)
    edge_channel_deploy(channel)
    workers = nginx_edge.worker_pids()

    served = served_certificate(nginx_edge.address, HOST)
    assert certificate_fingerprint(served) == first.fingerprint_sha256

    channel.certificate = channel.active_certificate = second
    channel.save()
    edge_channel_deploy(channel)

    served = served_certificate(nginx_edge.address, HOST)
    assert certificate_fingerprint(served) == second.fingerprint_sha256
    # Same master and the same worker: nginx was not reloaded, it read the new files.
    assert nginx_edge.process.poll() is None
    assert nginx_edge.worker_pids() == workers


def test_nginx_serves_each_hostname_its_own_certificate(
    nginx_edge, make_certificate, acme, opera, channel_with
):
    acme_cert = make_certificate(acme, hostnames=[HOST])
    opera_cert = make_certificate(opera, hostnames=["opera.example.test"])
    channel_with(acme_cert)
    channel_with(opera_cert, hostname="opera.example.test", name="Opera")
    edge_sync()

    for hostname, certificate in ((HOST, acme_cert), ("opera.example.test", opera_cert)):
        served = served_certificate(nginx_edge.address, hostname)
        assert certificate_fingerprint(served) == certificate.fingerprint_sha256


def test_nginx_handshake_fails_once_the_files_are_removed(
    nginx_edge, make_certificate, acme, channel_with
):
    channel = channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_sync()
    served_certificate(nginx_edge.address, HOST)

    channel.ssl_mode = SalesChannel.SslMode.NONE
    channel.save()
    assert edge_sync() == [EdgeChange(HOST, "removed")]

    with pytest.raises(ProbeError, match="TLS handshake"):
        served_certificate(nginx_edge.address, HOST)
    assert f"{HOST}.crt" in nginx_edge.error_log()  # nginx looked for the file, found none


def test_an_sni_name_that_climbs_out_of_the_edge_folder_opens_nothing(
    nginx_edge, make_certificate, acme
):
    pair_plant_outside(nginx_edge.edge_dir, make_certificate(acme, hostnames=["x.example.test"]))

    with pytest.raises(ssl.SSLError):
        sni_handshake_raw(nginx_edge.address, "sub/../../outside")

    assert "outside.crt" not in nginx_edge.error_log()


# --- deploy/nginx.conf, the production example, run for real ---------------------------------

DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


class _Echo(BaseHTTPRequestHandler):
    """Answers "<server name> <Host header> <path>" so a test sees where nginx sent a request."""

    def do_GET(self):
        body = f"{self.server.name} {self.headers['Host']} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def echo_server(name: str) -> Iterator[str]:
    """A loopback HTTP server standing in for an upstream; yields its host:port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.name = name
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def deploy_config_for_test(
    tls_port: int, http_port: int, *, edge_dir: Path, workdir: Path, app: str, shop: str
) -> str:
    """deploy/nginx.conf with its addresses and paths pointed at this test's; each
    replacement must apply, so the test notices when the example changes shape."""
    text = DEPLOY_CONFIG.read_text()
    replacements = [
        ("/var/lib/certmgr/edge/", f"{edge_dir}/"),
        ("proxy_pass http://web:8000;", f"proxy_pass http://{app};"),
        ("server shop:8080;", f"server {shop};"),
        ("listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;"),
        ("listen 443 ssl", f"listen 127.0.0.1:{tls_port} ssl"),
        ("worker_processes auto;", "worker_processes 1;"),
        ("http {", f"error_log {workdir}/error.log info;\nhttp {{\n{http_paths(workdir)}"),
    ]
    if os.geteuid() != 0:
        replacements.append(("user root;", ""))
    for old, new in replacements:
        assert old in text, f"deploy/nginx.conf no longer contains {old!r}"
        text = text.replace(old, new)
    # IPv6 may be missing on a test machine; the IPv4 listeners carry the same servers.
    return "\n".join(line for line in text.splitlines() if "listen [::]" not in line)


@pytest.fixture
def production_edge(tmp_path, settings):
    if nginx_program() is None:
        require_program("nginx")  # skips, or fails in CI
    edge_dir = tmp_path / "edge"
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    with echo_server("certmgr") as app, echo_server("shop") as shop:
        config = partial(
            deploy_config_for_test, edge_dir=edge_dir, workdir=workdir, app=app, shop=shop
        )
        with nginx_run(edge_dir=edge_dir, workdir=workdir, config=config) as nginx:
            settings.CERTMGR_EDGE_DIR = edge_dir
            yield nginx


def https_get(nginx, hostname: str, path: str) -> tuple[int, str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPConnection("127.0.0.1", nginx.tls_port, timeout=5)
    # SNI and Host are the shop's name, as a browser would send them.
    connection.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", nginx.tls_port), timeout=5),
        server_hostname=hostname,
    )
    connection.request("GET", path, headers={"Host": hostname})
    response = connection.getresponse()
    return response.status, response.read().decode()


def http_get(nginx, hostname: str, path: str) -> tuple[int, str, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=5)
    connection.request("GET", path, headers={"Host": hostname})
    response = connection.getresponse()
    return response.status, response.read().decode(), response.getheader("Location")


def test_the_production_config_serves_each_shop_its_certificate_and_nothing_else(
    production_edge, make_certificate, acme, channel_with
):
    certificate = make_certificate(acme, hostnames=[HOST])
    channel_with(certificate)
    edge_sync()
    outside = make_certificate(acme, name="outside", hostnames=["outside.example.test"])
    pair_plant_outside(production_edge.edge_dir, outside)

    served = served_certificate(production_edge.address, HOST)
    assert certificate_fingerprint(served) == certificate.fingerprint_sha256
    no_certificate = "the server has no usable certificate for this name"
    with pytest.raises(ProbeError, match=no_certificate):  # nothing deployed for this name
        served_certificate(production_edge.address, "unknown.example.test")
    # No SNI at all (Python sends none for an IP address): ssl_reject_handshake.
    with pytest.raises(ProbeError, match="UNRECOGNIZED_NAME"):
        served_certificate(production_edge.address, "127.0.0.1")
    # Upper case never names a file (browsers send host names in lower case).
    with pytest.raises(ProbeError):
        served_certificate(production_edge.address, HOST.upper())
    with pytest.raises(ssl.SSLError):
        sni_handshake_raw(production_edge.address, "sub/../../outside")
    assert "outside.crt" not in production_edge.error_log()  # never even tried to open it


def test_the_production_config_serves_the_longest_hostname_certmgr_accepts(
    production_edge, make_certificate, acme, channel_with
):
    certificate = make_certificate(acme, hostnames=[HOST])
    channel_with(certificate, hostname=LONGEST)
    edge_sync()

    served = served_certificate(production_edge.address, LONGEST)

    assert certificate_fingerprint(served) == certificate.fingerprint_sha256


def test_the_production_config_routes_well_known_to_certmgr_and_the_rest_to_the_shop(
    production_edge, make_certificate, acme, channel_with
):
    channel_with(make_certificate(acme, hostnames=[HOST]))
    edge_sync()
    token = "/.well-known/acme-challenge/abc123"

    assert http_get(production_edge, HOST, token) == (200, f"certmgr {HOST} {token}", None)
    status, _, location = http_get(production_edge, HOST, "/tickets?x=1")
    assert (status, location) == (301, f"https://{HOST}/tickets?x=1")
    apple = "/.well-known/apple-developer-merchantid-domain-association"
    assert https_get(production_edge, HOST, apple) == (200, f"certmgr {HOST} {apple}")
    assert https_get(production_edge, HOST, "/tickets") == (200, f"shop {HOST} /tickets")
