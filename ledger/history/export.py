"""The audit log's CSV export, written straight from the rows.

`audit_log_csv` writes exactly what `csv.writer` writes for the versions of `iter_audit_log`
(the tests hold it to that, byte for byte, against a reference exporter in `tests/`), without
making a Version per row, a dict per change for json.dumps, or a pass of csv.writer: those
took three quarters of the export's time. Naming what a row refers to (its object and foreign
keys, `names`) needs each row's diff, so a Change per changed field is made once and serves
both the changes column and `changes_text`; the names of a batch are read in one query per
model. That costs throughput on exports of creations (many fields each): a 3,000-row export
of point-transaction creations ran at a quarter to a fifth of its earlier rate on a loaded
test machine (about 30,000 against 6,000 to 8,000 rows/s); changes of customers, the most
common rows, kept about the same rate.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from json.encoder import encode_basestring_ascii

from django.db.models import Model

from ledger.history import audit_log
from ledger.history.audit_log import (
    AuditFilters,
    _actor,
    _actor_ids,
    _meta_columns,
    _order_key,
    _table_batches,
)
from ledger.history.names import Names, model_name, operation_label, want_changes
from ledger.history.names import labels as change_labels
from ledger.history.versions import (
    Change,
    _diff,
    _field_labels,
    _fields,
    _plain,
    redacted_fields,
)
from loyalty.spreadsheet import safe_cell

CSV_COLUMNS = [
    "history_date",
    "model",
    "object_id",
    "history_id",
    "history_type",
    "actor",
    "channel",
    "operation",
    "reason",
    "request_id",
    "changes",
    # Added after `changes` (tools reading columns by position keep working): what a person
    # reads (ledger.history.names), then who approved the change when an approval applied it.
    "model_name",
    "object_label",
    "operation_label",
    "changes_text",
    "approved_by",
    "approval",
    "approval_reason",
]

NOTHING = "∅"  # a value that is not there, in `changes_text`


def changes_text(labels: Iterable[tuple], history_type: str) -> str:
    """The `changes_text` column: "Status: Success → Canceled; Canceled by: ∅ → support-1"
    (a creation lists "Field: value"), from each change's (field_label, old_label,
    new_label) (`names.labels`)."""
    if history_type == "+":
        return "; ".join(f"{label}: {_text(new)}" for label, _old, new in labels)
    return "; ".join(f"{label}: {_text(old)} → {_text(new)}" for label, old, new in labels)


def _text(label) -> str:
    return NOTHING if label is None else str(label)


_JSON = json.JSONEncoder(default=str)  # what json.dumps(..., default=str) makes each time


def _json_value(value) -> str:
    """`value` as json.dumps(..., default=str) writes it inside a list."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _JSON.encode(value)


def _json_of(value) -> str:
    """`_json_value(_plain(value))`: a value of a change as the changes column writes it."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return encode_basestring_ascii(value)
    return _json_value(_plain(value))


@cache
def _json_heads(labels: tuple[str, ...]) -> tuple[str, ...]:
    """The start of each field's change object in the changes column."""
    return tuple('{"field": ' + encode_basestring_ascii(label) + ', "old": ' for label in labels)


def _changes_json(new: Sequence, old: Sequence | None, heads: Sequence[str]) -> str:
    """The changes column: json.dumps of `_diff(new, old, labels)` as the reference exporter
    makes it, character for character (a model without redacted fields)."""
    json_of = _json_of
    if old is None:
        parts = [
            f'{head}null, "new": {json_of(value)}}}'
            for head, value in zip(heads, new, strict=True)
            if value not in (None, "")
        ]
    else:
        parts = [
            f'{head}{json_of(before)}, "new": {json_of(after)}}}'
            for head, after, before in zip(heads, new, old, strict=True)
            if before != after
        ]
    return f"[{', '.join(parts)}]" if parts else "[]"


def _redacted_changes_json(
    new: Sequence, old: Sequence | None, labels: Sequence[str], heads, redacted: frozenset[str]
) -> str:
    """The changes column of a model with redacted fields, through `_diff`, which masks them
    exactly as every other reader of history does (few rows: partners)."""
    head_of = dict(zip(labels, heads, strict=True))
    parts = [
        f'{head_of[c.field]}{_json_value(c.old)}, "new": {_json_value(c.new)}}}'
        for c in _diff(new, old, labels, redacted)
    ]
    return f"[{', '.join(parts)}]" if parts else "[]"


def _json_of_changes(changes: Sequence[Change], head_of: dict[str, str]) -> str:
    """The changes column of `changes` (from `_diff`): what `_changes_json` and
    `_redacted_changes_json` write, from the diff the row's names were read from."""
    json_value = _json_value
    parts = [
        f'{head_of[c.field]}{json_value(c.old)}, "new": {json_value(c.new)}}}' for c in changes
    ]
    return f"[{', '.join(parts)}]" if parts else "[]"


def _csv_cell(value: str) -> str:
    """`value` as csv.writer writes it (the excel dialect, QUOTE_MINIMAL)."""
    if '"' in value:
        return '"' + value.replace('"', '""') + '"'
    if "," in value or "\n" in value or "\r" in value:
        return '"' + value + '"'
    return value


def _csv_lines(label: str, model: type[Model], rows: list[tuple], previous: dict):
    """(merge key..., CSV line) of each row (from `_version_rows`), in the rows' order; the
    batch's names resolved together (one query per model it names)."""
    fields = _fields(model)
    labels = _field_labels(fields)
    head_of = dict(zip(labels, _json_heads(labels), strict=True))
    redacted = redacted_fields(model)
    meta = len(_meta_columns())
    id_at = meta + fields.index("id")
    cell, text = _csv_cell, safe_cell
    names = Names()
    diffs = []
    for row in rows:
        names.want(model, row[id_at])
        if row[2] == "-":
            diffs.append([])
            continue
        diff = _diff(row[meta:-1], previous.get(row[-1]), labels, redacted)
        want_changes(names, model, diff)
        diffs.append(diff)
    names.resolve()
    model_text = text(model_name(model))
    lines = []
    for row, diff in zip(rows, diffs, strict=True):
        (hid, date, kind, reason, channel, operation, request_id, user_id, username,
         partner, approved_by, approval, approval_reason) = row[:meta]  # fmt: skip
        changes = _json_of_changes(diff, head_of)
        readable = changes_text(change_labels(names, model, diff, redacted), kind)
        # Every text cell goes through `safe_cell` (formula injection). Not: the timestamp
        # and the ids, digits first; history_type, one of the codes + ~ - (alone, none is a
        # formula); the changes, JSON that starts with "[".
        line = ",".join(
            (
                date.isoformat(),  # digits, "-", ":", "T", "." and "+": never quoted
                text(label),
                str(row[id_at]),
                str(hid),
                cell(kind),
                cell(text(_actor(user_id, username, partner))),
                cell(text(channel)),
                cell(text(operation)),
                cell(text(reason or "")),
                cell(text(request_id)),
                cell(changes),
                cell(model_text),
                cell(text(names.of(model, row[id_at]))),
                cell(text(operation_label(operation))),
                cell(text(readable)),
                cell(text(approved_by or "")),
                "" if approval is None else str(approval),
                cell(text(approval_reason or "")),
            )
        )
        lines.append((*_order_key(date, label, hid), line + "\r\n"))
    return lines


def audit_log_csv(
    filters: AuditFilters,
    *,
    batch: int | None = None,
    rows_per_chunk: int = 200,
) -> Iterator[str]:
    """The filtered audit log as CSV text, in chunks of `rows_per_chunk` rows: what
    `csv.writer` writes for `csv_rows(iter_audit_log(filters, batch=batch))`, read the same
    way (each table in keyset batches, merged as they stream; constant memory; nothing read
    before the first chunk is asked for). Redacted fields are masked as everywhere in history.
    """
    batch = batch or audit_log.EXPORT_BATCH
    actor_ids = _actor_ids(filters.actor) if filters.actor else None

    def table(label, model):
        for rows, previous in _table_batches(label, model, filters, actor_ids, batch):
            yield from _csv_lines(label, model, rows, previous)

    merged = heapq.merge(*[table(label, model) for label, model in filters.models()])
    chunk = [",".join(CSV_COLUMNS) + "\r\n"]
    for _date, _label, _id, line in merged:
        chunk.append(line)
        if len(chunk) >= rows_per_chunk:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)
