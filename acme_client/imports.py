"""Bulk onboarding's entry points for the import page (views_import.py) and
`manage.py import_channels` (README, "Importing sales channels"): the checks and the creation
are saleschannels/imports.py's.

A new channel is unverified: one imported as managed is ordered for only once its institution
proves it controls the hostname (README, "Onboarding a hostname"); Celery beat looks for the
proof and then orders the certificate.
"""

from django.db.models import QuerySet

from institutions.models import Institution
from saleschannels.imports import (
    ImportPlan,
    ImportResult,
    import_check,
    import_create,
    import_parse,
)


def channels_import_plan(data: bytes, *, institutions: QuerySet[Institution]) -> ImportPlan:
    """The file's rows, each checked (saleschannels.imports); ImportFileError for the file."""
    return import_check(import_parse(data), institutions=institutions)


def channels_import(plan: ImportPlan, *, actor) -> ImportResult:
    """Create the plan's channels, all or nothing (ImportRefused)."""
    return import_create(plan, actor=actor)
