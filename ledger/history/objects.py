"""The history of one object: its versions, newest first, in keyset pages."""

from __future__ import annotations

from django.db.models import Model

from ledger.history.versions import (
    Change,
    Version,
    _diff,
    _field_labels,
    actor_label,
    model_label,
    redacted_fields,
    tracked_fields,
)


def _changes(row, previous, fields: list[str], redacted: frozenset[str]) -> list[Change]:
    old = None if previous is None else [getattr(previous, name) for name in fields]
    new = [getattr(row, name) for name in fields]
    return _diff(new, old, _field_labels(tuple(fields)), redacted)


def _version(
    label: str, row, previous, fields: list[str], redacted: frozenset[str] = frozenset()
) -> Version:
    """The version of a historical model instance `row`, `previous` being the one before."""
    return Version(
        model=label,
        object_id=row.id,
        history_id=row.history_id,
        history_date=row.history_date,
        history_type=row.history_type,
        actor=actor_label(row.history_user),
        channel=row.channel,
        operation=row.operation,
        reason=row.history_change_reason or "",
        request_id=row.request_id,
        changes=[] if row.history_type == "-" else _changes(row, previous, fields, redacted),
        approved_by=row.approved_by.get_username() if row.approved_by_id else None,
        approval=row.approval_id,
        approval_reason=row.approval_reason,
    )


def object_history_page(
    model: type[Model], object_id: int, *, before: int | None = None, limit: int = 50
) -> tuple[list[Version], int | None]:
    """One page of an object's versions, newest first (those older than history id `before`),
    and the `before` of the next page, or None. One query, bounded: a customer with a million
    point movements has a million versions."""
    rows = model.history.filter(id=object_id).select_related("history_user__partner", "approved_by")
    if before is not None:
        rows = rows.filter(history_id__lt=before)
    rows = list(rows.order_by("-history_id")[: limit + 1])
    fields = tracked_fields(model)
    label = model_label(model)
    redacted = redacted_fields(model)
    versions = [
        _version(label, row, rows[i + 1] if i + 1 < len(rows) else None, fields, redacted)
        for i, row in enumerate(rows[:limit])
    ]
    next_before = versions[-1].history_id if len(rows) > limit else None
    return versions, next_before


def iter_object_history(model: type[Model], object_id: int, *, batch: int = 500):
    """Every version of one object, newest first, in constant memory (keyset pages)."""
    before = None
    while True:
        versions, before = object_history_page(model, object_id, before=before, limit=batch)
        yield from versions
        if before is None:
            return


def object_history(model: type[Model], object_id: int) -> list[Version]:
    """Every version of one object, newest first, each with what changed from the one before."""
    return list(iter_object_history(model, object_id))
