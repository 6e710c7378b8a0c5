"""Deployment of active certificates to the TLS edge directory (README, "Using it": SSL
Management, Edge and probe).

Contract:

* For every sales channel whose SSL mode is not ``none`` and whose active certificate has a
  certificate and a private key, ``settings.CERTMGR_EDGE_DIR`` holds ``<hostname>.crt`` (leaf
  followed by its intermediates, ``Certificate.public_bundle_pem()``) and ``<hostname>.key``
  (mode 0600). nginx opens both by the SNI name at every handshake (deploy/nginx.conf), so a
  change is live as soon as the files are renamed into place: no reload.
* Every write is atomic: a temporary file in the same directory (key: chmod 0600 before any
  byte is written), then ``os.replace``. The key is replaced first, then the certificate, so
  that a new hostname's ``.crt`` never appears without its key. A ``.key`` that already holds
  the new certificate's key (a renewal that kept it, acme_client/keys.py) is left untouched
  and only the ``.crt`` is replaced: then no handshake can see a mismatched pair.
* Files of channels set to ``none``, without an active certificate, or deleted are removed.
  Only ``*.crt``/``*.key`` files are ever removed; any other file in the directory is left alone.
* ``.certmgr-manifest.json`` in the directory maps each deployed hostname to the SHA-256
  fingerprint deployed, so that ``edge_sync()`` costs one query, one manifest read and one
  ``os.scandir`` when nothing changed; keys are decrypted only for what must be written, and
  file contents are read only with ``verify=True``. The manifest is written after the files,
  so a crash leaves it behind the files, never ahead: the next sync writes again.
* Writers in several processes (a worker deploying one channel, ``manage.py deploy_edge``)
  serialise on an ``flock`` of ``.certmgr-lock`` in the directory.
* A hostname containing "/" or NUL, or starting with ".", is refused with ValueError so that
  nothing is written outside the directory (hostnames are validated on input already). One
  whose ``<hostname>.key`` would exceed the 255-byte file-name limit is refused with
  ``OSError(ENAMETOOLONG)`` before any file is touched (input allows at most 251 characters,
  README "Using it": SSL Management; a row stored before that rule may be longer).
* One hostname's failure never stops the others: ``edge_sync()`` records it (hostname ->
  reason, logged as an error), goes on with the rest, saves the manifest for what succeeded
  and only then raises EdgeSyncError with every failure.
* One log line per change names the hostname. Key material is never logged.
* Settings are read when a function is called, never at import time.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from certificates.models import Certificate

from .models import SalesChannel

logger = logging.getLogger(__name__)

WRITTEN = "written"
REMOVED = "removed"

CERT_SUFFIX = ".crt"
KEY_SUFFIX = ".key"
MANIFEST_NAME = ".certmgr-manifest.json"
LOCK_NAME = ".certmgr-lock"
# Temporary files are named by this prefix and random letters (tempfile), never by hostname.
TEMP_PREFIX = ".certmgr-tmp-"
# The longest file name Linux file systems (ext4, XFS, tmpfs, overlayfs) take, in bytes.
FILE_NAME_MAX = 255
DIR_MODE = 0o750  # nginx's group may traverse; umask can only tighten it
KEY_MODE = 0o600
CERT_MODE = 0o644  # public material
# A temporary file this old was left by a process that died between write and rename.
TEMP_STALE_SECONDS = 3600
# Certificates are fetched by primary key in batches below every backend's parameter limit.
FETCH_BATCH = 500


@dataclass(frozen=True)
class EdgeChange:
    """One hostname whose files were written or removed."""

    hostname: str
    action: str  # WRITTEN | REMOVED


class EdgeSyncError(Exception):
    """Some hostnames could not be deployed or removed; all others were.

    `changes` lists what the sync did change, `failures` maps hostname -> reason in plain
    words, `unchanged` counts the deployable hostnames that were already in place.
    """

    def __init__(self, *, changes: list[EdgeChange], failures: dict[str, str], unchanged: int = 0):
        self.changes = changes
        self.failures = failures
        self.unchanged = unchanged
        names = ", ".join(sorted(failures))
        super().__init__(f"Could not deploy {len(failures)} hostname(s): {names}")


@dataclass
class _Plan:
    """What edge_sync found to do, before it touches the directory."""

    write: dict[str, int] = field(default_factory=dict)  # hostname -> certificate id
    remove: set[str] = field(default_factory=set)
    unchanged: int = 0  # deployable hostnames already in place


def edge_deployable_channels() -> QuerySet[SalesChannel]:
    """The channels whose active certificate belongs on the edge."""
    return (
        SalesChannel.objects.exclude(ssl_mode=SalesChannel.SslMode.NONE)
        .filter(active_certificate__isnull=False)
        .exclude(active_certificate__certificate_pem="")
        .exclude(active_certificate__private_key_encrypted="")
    )


def edge_channel_deploy(channel: SalesChannel) -> list[EdgeChange]:
    """Bring one channel's files in line with its active certificate (write or remove).

    Nothing is written when the manifest records the same fingerprint and both files exist.
    A renamed channel's old hostname is not known here: call edge_hostname_remove() for it.

    The channel is read again under the edge lock: a web process holding an older copy (the
    switch to managed) must not overwrite what a worker deployed meanwhile (the certificate
    it just issued). Whoever deploys last writes what the database says last.
    """
    hostname = _hostname_fits(_hostname_check(channel.hostname))
    directory = _edge_directory()
    with _edge_lock(directory):
        current = (
            SalesChannel.objects.select_related("active_certificate")
            .filter(pk=channel.pk, hostname=channel.hostname)
            .first()
        )
        certificate = current.active_certificate if current is not None else None
        deployable = (
            current is not None
            and current.ssl_mode != SalesChannel.SslMode.NONE
            and certificate is not None
            and bool(certificate.certificate_pem)
            and certificate.has_private_key
        )
        manifest = _manifest_read(directory)
        if not deployable:
            changes = _hostname_files_remove(directory, hostname)
            if manifest.pop(hostname, None) is not None:
                _manifest_write(directory, manifest)
            return changes
        if manifest.get(hostname) == certificate.fingerprint_sha256 and _files_present(
            directory, hostname
        ):
            return []
        _certificate_files_write(directory, hostname, certificate)
        manifest[hostname] = certificate.fingerprint_sha256
        _manifest_write(directory, manifest)
        _deployed_mark([hostname])
        return [EdgeChange(hostname, WRITTEN)]


def edge_hostname_remove(hostname: str) -> list[EdgeChange]:
    """Remove the files of a hostname that is no longer served (deleted or renamed channel)."""
    hostname = _hostname_check(hostname)
    directory = _edge_directory()
    with _edge_lock(directory):
        # A name too long for a file has no files: nothing to unlink.
        changes = _hostname_files_remove(directory, hostname) if _fits(hostname) else []
        manifest = _manifest_read(directory)
        if manifest.pop(hostname, None) is not None:
            _manifest_write(directory, manifest)
        return changes


def edge_sync(*, verify: bool = False) -> list[EdgeChange]:
    """Resynchronise the whole edge directory with the database; return what changed.

    Writes what is missing or differs from the manifest, removes ``*.crt``/``*.key`` files of
    hostnames that should not be there. With `verify`, also compares every file's bytes (and
    the key's mode) with what it should hold and rewrites damaged files; that decrypts every
    key, so it is meant for an occasional check, not for every run.
    Raises EdgeSyncError after doing everything else when some hostnames failed: a key that
    cannot be decrypted, a stored hostname that cannot be a file name, a file that cannot be
    written or removed.
    """
    directory = _edge_directory()
    with _edge_lock(directory):
        wanted, failures = _wanted_read()
        manifest = _manifest_read(directory)
        on_disk = _directory_scan(directory)
        plan = _plan_make(wanted=wanted, manifest=manifest, on_disk=on_disk)
        if verify:
            _plan_verify(plan, directory=directory, wanted=wanted)
        changes: list[EdgeChange] = []
        for hostname in sorted(plan.remove):
            try:
                changes.extend(_hostname_files_remove(directory, hostname))
            except OSError as error:
                failures[hostname] = _failure_record(hostname, "removed", _failure_words(error))
        failures.update(_planned_writes_run(plan, directory=directory, changes=changes))
        new_manifest = {
            hostname: fingerprint
            for hostname, (_, fingerprint) in wanted.items()
            if hostname not in failures
        }
        # A failed write keeps whatever it had, and its manifest entry with it.
        new_manifest.update({h: manifest[h] for h in failures if h in wanted and h in manifest})
        if new_manifest != manifest:
            _manifest_write(directory, new_manifest)
        _deployed_mark([change.hostname for change in changes if change.action == WRITTEN])
    if failures:
        raise EdgeSyncError(changes=changes, failures=failures, unchanged=plan.unchanged)
    return changes


def _deployed_mark(hostnames: list[str]) -> None:
    """Record on their channels that these hostnames' files were just written."""
    now = timezone.now()
    for start in range(0, len(hostnames), FETCH_BATCH):
        batch = hostnames[start : start + FETCH_BATCH]
        SalesChannel.objects.filter(hostname__in=batch).update(edge_deployed_at=now)


# --- planning -------------------------------------------------------------------------------


def _wanted_read() -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
    """(hostname -> (certificate id, fingerprint) for every deployable channel, hostname ->
    reason for those whose stored hostname cannot name a file here), in one query."""
    wanted, refused = {}, {}
    rows = (
        edge_deployable_channels()
        .order_by()  # no sort: the result becomes a dict
        .values_list("hostname", "active_certificate_id", "active_certificate__fingerprint_sha256")
    )
    for hostname, certificate_id, fingerprint in rows:
        try:
            _hostname_fits(_hostname_check(hostname))
        except OSError as error:
            # A row stored before the input rules must not stop the edge for every other shop.
            refused[hostname] = _failure_record(hostname, "deployed", error.strerror)
            continue
        except ValueError as error:  # a corrupt row or a raw SQL edit
            refused[hostname] = _failure_record(hostname, "deployed", str(error))
            continue
        wanted[hostname] = (certificate_id, fingerprint)
    return wanted, refused


def _failure_words(error: Exception) -> str:
    """What went wrong for one hostname, in plain words (never key material)."""
    if isinstance(error, InvalidToken):
        return "the private key cannot be decrypted with the configured keys"
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    return str(error)


def _failure_record(hostname: str, action: str, reason: str) -> str:
    """Log one hostname's failure (`action`: what could not be done); return the reason."""
    logger.error("edge: %s not %s: %s", hostname, action, reason)
    return reason


def _plan_make(
    *,
    wanted: dict[str, tuple[int, str]],
    manifest: dict[str, str],
    on_disk: _OnDisk,
) -> _Plan:
    plan = _Plan(remove=on_disk.hostnames() - wanted.keys())
    for hostname, (certificate_id, fingerprint) in wanted.items():
        if not (manifest.get(hostname) == fingerprint and on_disk.complete(hostname)):
            plan.write[hostname] = certificate_id
    plan.unchanged = len(wanted) - len(plan.write)
    return plan


def _plan_verify(plan: _Plan, *, directory: Path, wanted: dict[str, tuple[int, str]]) -> None:
    """Add to the plan the hostnames whose files differ from what the database says."""
    unchanged = {h: wanted[h][0] for h in wanted if h not in plan.write}
    for hostname, certificate in _certificates_fetch(unchanged):
        try:
            cert_bytes, key_bytes = _certificate_contents(certificate)
        except InvalidToken:
            plan.write[hostname] = certificate.pk  # reported as a failure by the write step
            continue
        if not (
            _file_holds(directory / f"{hostname}{CERT_SUFFIX}", cert_bytes)
            and _file_holds(directory / f"{hostname}{KEY_SUFFIX}", key_bytes, mode=KEY_MODE)
        ):
            logger.warning("edge: %s files differ from the database, rewriting", hostname)
            plan.write[hostname] = certificate.pk
    plan.unchanged = len(wanted) - len(plan.write)


def _planned_writes_run(plan: _Plan, *, directory: Path, changes: list[EdgeChange]) -> dict:
    """Write every planned hostname; return hostname -> reason for those that failed (each
    left as it was)."""
    failures = {}
    for hostname, certificate in _certificates_fetch(plan.write):
        try:
            _certificate_files_write(directory, hostname, certificate)
        except (InvalidToken, OSError) as error:
            failures[hostname] = _failure_record(hostname, "written", _failure_words(error))
            continue
        changes.append(EdgeChange(hostname, WRITTEN))
    return failures


def _certificates_fetch(certificate_ids: dict[str, int]) -> Iterator[tuple[str, Certificate]]:
    """(hostname, certificate) for hostname -> certificate id, in hostname order, batched."""
    hostnames = sorted(certificate_ids)
    for start in range(0, len(hostnames), FETCH_BATCH):
        batch = hostnames[start : start + FETCH_BATCH]
        certificates = Certificate.objects.only(
            "certificate_pem", "chain_pem", "private_key_encrypted", "fingerprint_sha256"
        ).in_bulk({certificate_ids[h] for h in batch})
        for hostname in batch:
            yield hostname, certificates[certificate_ids[hostname]]


# --- files ----------------------------------------------------------------------------------


def _hostname_check(hostname: str) -> str:
    """The hostname, if it names a file inside the edge directory; ValueError otherwise."""
    if not hostname or "/" in hostname or "\0" in hostname or hostname.startswith("."):
        raise ValueError(f"refusing unsafe hostname for the edge directory: {hostname!r}")
    return hostname


def _fits(hostname: str) -> bool:
    """Whether <hostname>.crt and <hostname>.key (same length) fit one file name."""
    return len(f"{hostname}{KEY_SUFFIX}".encode()) <= FILE_NAME_MAX


def _hostname_fits(hostname: str) -> str:
    """The hostname, if its files can be named; OSError(ENAMETOOLONG) in plain words if not."""
    if not _fits(hostname):
        longest = FILE_NAME_MAX - len(KEY_SUFFIX)
        raise OSError(
            errno.ENAMETOOLONG,
            f"the hostname has {len(hostname)} characters, too long for the edge's file "
            f"names (at most {longest})",
        )
    return hostname


def _edge_directory() -> Path:
    directory = Path(settings.CERTMGR_EDGE_DIR)
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return directory


@contextmanager
def _edge_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive flock so two processes never interleave manifest updates."""
    descriptor = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


@dataclass
class _OnDisk:
    """Hostnames that have a .crt and a .key file in the edge directory."""

    crt: set[str]
    key: set[str]

    def complete(self, hostname: str) -> bool:
        return hostname in self.crt and hostname in self.key

    def hostnames(self) -> set[str]:
        return self.crt | self.key


def _directory_scan(directory: Path) -> _OnDisk:
    """What one scandir shows (names only, no contents); also sweeps stale temp files."""
    with os.scandir(directory) as entries:
        names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
    for name in names:
        if name.startswith(TEMP_PREFIX):
            _temp_file_sweep(directory / name)
    # Dotfiles are never a hostname's (see _hostname_check): the manifest, temp files, ...
    return _OnDisk(
        crt={n[:-4] for n in names if n.endswith(CERT_SUFFIX) and n[0] != "." and len(n) > 4},
        key={n[:-4] for n in names if n.endswith(KEY_SUFFIX) and n[0] != "." and len(n) > 4},
    )


def _temp_file_sweep(path: Path) -> None:
    """Delete a temporary file abandoned by a crashed writer (a live one is recent)."""
    with suppress(FileNotFoundError):
        if time.time() - path.stat().st_mtime > TEMP_STALE_SECONDS:
            path.unlink()


def _files_present(directory: Path, hostname: str) -> bool:
    return all(
        (directory / f"{hostname}{suffix}").is_file() for suffix in (CERT_SUFFIX, KEY_SUFFIX)
    )


def _certificate_contents(certificate: Certificate) -> tuple[bytes, bytes]:
    """(bundle, key) bytes as they belong on disk; decrypts the key."""
    return certificate.public_bundle_pem().encode(), certificate.private_key_pem().encode()


def _certificate_files_write(directory: Path, hostname: str, certificate: Certificate) -> None:
    cert_bytes, key_bytes = _certificate_contents(certificate)
    key_path = directory / f"{hostname}{KEY_SUFFIX}"
    cert_path = directory / f"{hostname}{CERT_SUFFIX}"
    if _file_holds(key_path, key_bytes, mode=KEY_MODE):
        # A renewal that kept its key (acme_client/keys.py): only the .crt changes, by one
        # rename, and the .key is not touched at all. nginx opens the two files separately at
        # each handshake, so whichever certificate it reads, the key beside it is its key: no
        # handshake can pair a certificate with another key (README, "Edge and probe").
        _file_write_atomic(cert_path, cert_bytes, mode=CERT_MODE)
        logger.info("edge: wrote %s (certificate %s)", hostname, certificate.fingerprint_sha256)
        return
    # A new key (first deployment, rotation, ACME_REUSE_KEY off, an uploaded certificate):
    # nginx opens the .crt, reads the chain, and then opens the .key at each handshake, so a
    # handshake whose two opens straddle the renames pairs one certificate with the other's
    # key and fails (README, "Edge and probe": measured, about one handshake in ten under
    # clients handshaking without pause on a loaded 2-core machine, whichever file goes
    # first). Both files are written and flushed first and renamed one right after the other,
    # which keeps the writer's part of that window to two system calls. Key first: a
    # hostname's .crt then never exists without its key beside it.
    key_temp = _file_prepare(key_path, key_bytes, mode=KEY_MODE)
    try:
        cert_temp = _file_prepare(cert_path, cert_bytes, mode=CERT_MODE)
    except BaseException:
        _temp_discard(key_temp)
        raise
    try:
        os.replace(key_temp, key_path)
        os.replace(cert_temp, cert_path)
    except BaseException:
        _temp_discard(key_temp)
        _temp_discard(cert_temp)
        raise
    logger.info("edge: wrote %s (certificate %s)", hostname, certificate.fingerprint_sha256)


def _file_write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace `path` with `data` so that a reader sees the old file or the new, never half."""
    temp_name = _file_prepare(path, data, mode=mode)
    try:
        os.replace(temp_name, path)
    except BaseException:
        _temp_discard(temp_name)
        raise


def _file_prepare(path: Path, data: bytes, *, mode: int) -> str:
    """A temporary file beside `path` holding `data`, on disk, ready to be renamed over it."""
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    try:
        # The mode is set before the content exists, so a key is never readable by others.
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            # On disk before the rename, so a power cut cannot leave an empty file in place.
            os.fsync(stream.fileno())
    except BaseException:
        _temp_discard(temp_name)
        raise
    return temp_name


def _temp_discard(temp_name: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(temp_name)


def _file_holds(path: Path, data: bytes, *, mode: int | None = None) -> bool:
    try:
        if mode is not None and (path.stat().st_mode & 0o777) != mode:
            return False
        return path.read_bytes() == data
    except OSError:  # missing or unreadable: the write step rewrites it, or reports why not
        return False


def _hostname_files_remove(directory: Path, hostname: str) -> list[EdgeChange]:
    removed = False
    # Certificate first, mirroring the write order: a .crt never outlives its key.
    for suffix in (CERT_SUFFIX, KEY_SUFFIX):
        try:
            os.unlink(directory / f"{hostname}{suffix}")
        except FileNotFoundError:
            continue
        removed = True
    if not removed:
        return []
    logger.info("edge: removed %s", hostname)
    return [EdgeChange(hostname, REMOVED)]


# --- manifest -------------------------------------------------------------------------------


def _manifest_read(directory: Path) -> dict[str, str]:
    """hostname -> deployed fingerprint; empty (so everything is rewritten) when unreadable."""
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        logger.warning("edge: manifest unreadable, every certificate will be rewritten")
        return {}
    deployed = data.get("deployed") if isinstance(data, dict) else None
    if not isinstance(deployed, dict):
        return {}
    return {str(h): str(f) for h, f in deployed.items()}


def _manifest_write(directory: Path, manifest: dict[str, str]) -> None:
    # No indent: with one, json falls back to its pure-Python encoder (10 000 hosts: 2x slower).
    text = json.dumps({"version": 1, "deployed": dict(sorted(manifest.items()))})
    _file_write_atomic(directory / MANIFEST_NAME, text.encode(), mode=0o640)
