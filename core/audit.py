"""Recording a write: the audit row people read in the back office, and the log event
operators read in the logs (README, "Configuration": LOG_FORMAT).

`audit()` is the one call a service makes per write, inside its transaction: it writes the
AuditEvent row and logs the event once the transaction commits, so that a rolled-back write
is neither in the trail nor in the logs. `event_log()` alone is for what is logged but not
audited (scheduled work, failures). Never pass key material, passphrases or tokens.
"""

import logging

from django.db import transaction

from .models import AuditEvent


def actor_id(actor) -> int | None:
    """The id of the user who acted, or None for the platform itself, an anonymous caller or
    an API token (whose principal has no pk)."""
    return actor.pk if actor is not None and actor.is_authenticated else None


def actor_user(actor):
    """The user to record as having acted: None for the platform, an anonymous caller or an
    API token (README, "API": recorded by its name, actor_token_name)."""
    if actor is None or not actor.is_authenticated or actor_token_name(actor):
        return None
    return actor


def actor_token_name(actor) -> str:
    """The name of the API token that acted, "" for anyone else."""
    return getattr(actor, "token_name", "") if actor is not None else ""


def event_log(
    log: logging.Logger, event: str, message: str, *, shown: dict | None = None, **fields
) -> None:
    """Log one significant event, once the current transaction commits (at once outside one),
    so that a rolled-back write is never reported: `event` and `fields` (certificate_id,
    channel_id, institution_id, order_id...) as fields for JSON logs, and `message` for
    people, a str.format template over the fields and `shown` (words for people only, e.g.
    "on"/"off")."""
    text = message.format_map({**fields, **(shown or {})})
    extra = {"event": event, **fields}
    transaction.on_commit(lambda: log.info(text, extra=extra))


def audit_record(
    *, institution, actor, action: str, target, details: dict | None = None
) -> AuditEvent:
    """Write one audit event about `target` (a model instance)."""
    return AuditEvent.objects.create(
        institution=institution,
        actor=actor_user(actor),
        actor_token=actor_token_name(actor),
        action=action,
        target_type=target._meta.model_name,
        target_id=target.pk,
        target_repr=str(target)[:255],
        details=details or {},
    )


def audit(
    log: logging.Logger,
    event: str,
    message: str,
    *,
    institution,
    actor,
    action: str,
    target,
    details: dict | None = None,
    shown: dict | None = None,
    **fields,
) -> AuditEvent:
    """Record one write by `actor` on `target`: the audit row with `details`, and the log
    event `event` with `fields` (and the actor's id), as event_log() words it."""
    row = audit_record(
        institution=institution, actor=actor, action=action, target=target, details=details
    )
    token = actor_token_name(actor)
    if token:
        fields["actor_token"] = token
    event_log(log, event, message, shown=shown, **fields, actor_id=actor_id(actor))
    return row
