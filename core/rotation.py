"""Rotation of the encryption keys (`manage.py rotate_encryption_keys`; README, "Rotating
the encryption key").

Which columns and session values are encrypted is declared by the app that owns them, in its
AppConfig (`encrypted_columns`, `encrypted_session_keys`), so that this module, at the bottom
of the apps, needs to import none of them.
"""

import logging
from dataclasses import dataclass, field
from importlib import import_module

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import transaction

from . import encryption

logger = logging.getLogger(__name__)

ROTATION_BATCH_SIZE = 500
# Session engines whose sessions live in the django_session table.
_DATABASE_SESSION_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)


def _encrypted_columns() -> list[tuple[type, str]]:
    """Every column holding a Fernet token (an empty string means no value), as each app
    declares them in its AppConfig's `encrypted_columns` ("Model", "column") pairs."""
    return [
        (config.get_model(model_name), column)
        for config in apps.get_app_configs()
        for model_name, column in getattr(config, "encrypted_columns", ())
    ]


def _encrypted_session_keys() -> list[str]:
    """The session keys whose values are Fernet tokens, as each app declares them in its
    AppConfig's `encrypted_session_keys`."""
    return [
        key
        for config in apps.get_app_configs()
        for key in getattr(config, "encrypted_session_keys", ())
    ]


@dataclass
class ColumnRotation:
    """What rotation found (or, with dry_run, would do) in one encrypted column."""

    label: str  # "table.column"
    values: int = 0
    current: int = 0  # already under the first key
    rotated: int = 0  # re-encrypted (or, with dry_run, to be re-encrypted)


@dataclass
class KeyRotationReport:
    columns: list[ColumnRotation] = field(default_factory=list)
    # (label, pk) of each value that no configured key decrypts; never the value itself.
    undecryptable: list[tuple[str, object]] = field(default_factory=list)
    session_drafts_rotated: int = 0
    session_drafts_dropped: int = 0
    sessions_checked: bool = False


class EncryptionKeysMissing(Exception):
    """Some stored values are encrypted under no configured key: rotation refused."""

    def __init__(self, report: KeyRotationReport):
        self.report = report
        super().__init__(
            f"{len(report.undecryptable)} stored value(s) cannot be decrypted with any key of "
            "CERTMGR_ENCRYPTION_KEYS"
        )


def _column_batches(model, column: str, batch_size: int):
    """(pk, token) of the non-empty values of a column, `batch_size` rows at a time by pk,
    so that memory stays bounded and each batch reads what is committed now."""
    last_pk = None
    while True:
        rows = model.objects.exclude(**{column: ""}).order_by("pk")
        if last_pk is not None:
            rows = rows.filter(pk__gt=last_pk)
        batch = list(rows.values_list("pk", column)[:batch_size])
        if not batch:
            return
        yield batch
        last_pk = batch[-1][0]


def _column_pass(model, column: str, *, batch_size: int, report: KeyRotationReport, write: bool):
    """Count the column's values under the first key, under older ones, and under none (noted
    in the report); with `write`, re-encrypt those under older keys, one transaction per batch.

    Each row is written only if it still holds the token read (a conditional update): a
    value changed meanwhile by the application is left as the application wrote it.
    """
    result = ColumnRotation(label=f"{model._meta.db_table}.{column}")
    for batch in _column_batches(model, column, batch_size):
        with transaction.atomic():
            for pk, token in batch:
                result.values += 1
                try:
                    if encryption.token_is_current(token):  # signatures only: cheap
                        result.current += 1
                        continue
                    rotated = encryption.token_rotate(token) if write else None
                except InvalidToken:
                    report.undecryptable.append((result.label, pk))
                    continue
                if rotated is None:  # counting only
                    result.rotated += 1
                    continue
                result.rotated += model.objects.filter(pk=pk, **{column: token}).update(
                    **{column: rotated}
                )
    report.columns.append(result)


def _session_drafts_rotate(*, batch_size: int, dry_run: bool, report: KeyRotationReport):
    """Re-encrypt the values kept encrypted in database sessions (e.g. the files of an upload
    that asked for its expiry date, encrypted like keys since they may hold one).

    A draft no configured key decrypts is removed from its session rather than refused: the
    upload page already ignores such a draft (the operator chooses the files again), and
    leaving it would keep ciphertext under a retired key in the database.
    """
    if settings.SESSION_ENGINE not in _DATABASE_SESSION_ENGINES:
        return  # sessions are not in the database: nothing of them is in a dump
    report.sessions_checked = True
    session_keys = _encrypted_session_keys()
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    last_key = None
    while True:
        rows = Session.objects.order_by("pk")
        if last_key is not None:
            rows = rows.filter(pk__gt=last_key)
        batch = list(rows.values_list("pk", "session_data")[:batch_size])
        if not batch:
            return
        last_key = batch[-1][0]
        for session_key, session_data in batch:
            data = store_class().decode(session_data)  # {} when it does not verify
            changed = False
            for key in session_keys:
                token = data.get(key)
                if not token:
                    continue
                try:
                    rotated = encryption.token_rotate(token)
                except InvalidToken:
                    rotated = ""
                if rotated is None:
                    continue
                changed = True
                if rotated:
                    report.session_drafts_rotated += 1
                    data[key] = rotated
                else:
                    report.session_drafts_dropped += 1
                    del data[key]
            if not changed:
                continue
            if dry_run:
                continue
            Session.objects.filter(pk=session_key, session_data=session_data).update(
                session_data=store_class().encode(data)
            )
            if hasattr(store_class, "cache_key_prefix"):  # cached_db: forget the old copy
                caches[settings.SESSION_CACHE_ALIAS].delete(
                    store_class.cache_key_prefix + session_key
                )


def encryption_keys_rotate(
    *, dry_run: bool = False, batch_size: int = ROTATION_BATCH_SIZE
) -> KeyRotationReport:
    """Re-encrypt every stored encrypted value under the first key of CERTMGR_ENCRYPTION_KEYS.

    First every value is checked (signatures only): when any is under no configured key,
    nothing is changed and EncryptionKeysMissing names each (table.column, pk). Then each
    column is rotated in batches of `batch_size` rows, one transaction per batch. Values
    already under the first key are left alone, so an interrupted run is simply run again
    and a second run changes nothing. With dry_run, only the check runs and the report
    counts what would be re-encrypted.
    """
    checked = KeyRotationReport()
    for model, column in _encrypted_columns():
        _column_pass(model, column, batch_size=batch_size, report=checked, write=False)
    if checked.undecryptable:
        raise EncryptionKeysMissing(checked)
    if dry_run:
        _session_drafts_rotate(batch_size=batch_size, dry_run=True, report=checked)
        return checked

    report = KeyRotationReport()
    for model, column in _encrypted_columns():
        _column_pass(model, column, batch_size=batch_size, report=report, write=True)
    _session_drafts_rotate(batch_size=batch_size, dry_run=False, report=report)
    if report.undecryptable:  # written meanwhile by a process configured with other keys
        raise EncryptionKeysMissing(report)
    logger.info(
        "encryption keys rotated: %s values re-encrypted",
        sum(column.rotated for column in report.columns),
        extra={
            "event": "encryption_keys_rotated",
            "rotated": sum(column.rotated for column in report.columns),
        },
    )
    return report
