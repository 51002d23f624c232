"""Reading history: versions of one object and the audit log across every audited model.

Both the admin and the staff API present history through this module, so "who, when, through
which channel, why, before and after" reads the same everywhere. Queries are bounded: a page
of the audit log is one indexed query per audited table plus two per table on the page to
compute the changes, whatever the size of the tables. The CSV export streams each table in
keyset batches (two queries per batch) and merges them, in constant memory, writing the CSV
straight from the rows.

The audit log reads rows as tuples (`values_list`), not model instances: an export turns
hundreds of thousands of rows into versions, and instantiating each historical row and its
previous version (with its user and partner) was most of the time it took. Each version's
previous version is found by a correlated subquery, one probe of the (id, history_id) index
of its historical table (`accounts.models.AuditHistoricalRecords`).
"""

from __future__ import annotations

import base64
import datetime as dt
import heapq
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from json.encoder import encode_basestring_ascii

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist
from django.db import connections
from django.db.models import Model, OuterRef, Q, Subquery
from django.utils.dateparse import parse_datetime

from accounts.models import Customer, Merchant, Store
from ledger.models import BalanceUpdate, PointTransaction, Stamp, StampCard
from partners.models import Partner

# The label of each audited model in the audit log, in a fixed order (used as a tie-breaker).
AUDITED_MODELS: dict[str, type[Model]] = {
    "balanceupdate": BalanceUpdate,
    "customer": Customer,
    "merchant": Merchant,
    "partner": Partner,
    "pointtransaction": PointTransaction,
    "stamp": Stamp,
    "stampcard": StampCard,
    "store": Store,
}
_RANK = {label: rank for rank, label in enumerate(sorted(AUDITED_MODELS))}
MERCHANT_COLUMN = {Merchant: "id", Partner: "primary_merchant_id"}  # others: merchant_id

HISTORY_COLUMNS = {
    "history_id",
    "history_date",
    "history_type",
    "history_user",
    "history_change_reason",
    "history_relation",
    "channel",
    "operation",
    "request_id",
}


@dataclass(frozen=True)
class Change:
    field: str
    old: object
    new: object


@dataclass
class Version:
    model: str
    object_id: int
    history_id: int
    history_date: dt.datetime
    history_type: str
    actor: str
    channel: str
    operation: str
    reason: str
    request_id: str
    changes: list[Change] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "object_id": self.object_id,
            "history_id": self.history_id,
            "history_date": self.history_date,
            "history_type": self.history_type,
            "actor": self.actor,
            "channel": self.channel,
            "operation": self.operation,
            "reason": self.reason,
            "request_id": self.request_id,
            "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in self.changes],
        }


def actor_label(user) -> str:
    """A staff user's username, a partner's name, or "system" for commands without a user."""
    if user is None:
        return "system"
    try:
        return user.partner.name
    except ObjectDoesNotExist:
        return user.get_username()


def model_label(model: type[Model]) -> str:
    return model._meta.model_name


def tracked_fields(model: type[Model]) -> list[str]:
    history_model = model.history.model
    return [f.attname for f in history_model._meta.fields if f.name not in HISTORY_COLUMNS]


@cache
def _fields(model: type[Model]) -> tuple[str, ...]:
    """`tracked_fields`, once per model (`model.history` builds a manager class per access)."""
    return tuple(tracked_fields(model))


@cache
def _field_labels(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The name a change shows for each field: a foreign key without its `_id`."""
    return tuple(name[:-3] if name.endswith("_id") and name != "id" else name for name in fields)


_SIMPLE_TYPES = frozenset({int, str, bool})


def _plain(value):
    if value is None or type(value) in _SIMPLE_TYPES:
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "as_tuple"):  # Decimal
        return str(value)
    return value


def _diff(new: Sequence, old: Sequence | None, labels: Sequence[str]) -> list[Change]:
    """The changes from the values `old` to `new` (both in the order of `labels`).

    Without `old` (a creation, or a version whose previous one is unknown) every field that
    has a value is a change from None.
    """
    if old is None:
        return [
            Change(label, None, _plain(value))
            for label, value in zip(labels, new, strict=True)
            if value not in (None, "")
        ]
    return [
        Change(label, _plain(before), _plain(after))
        for label, after, before in zip(labels, new, old, strict=True)
        if before != after
    ]


def _changes(row, previous, fields: list[str]) -> list[Change]:
    old = None if previous is None else [getattr(previous, name) for name in fields]
    return _diff([getattr(row, name) for name in fields], old, _field_labels(tuple(fields)))


def _version(label: str, row, previous, fields: list[str]) -> Version:
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
        changes=[] if row.history_type == "-" else _changes(row, previous, fields),
    )


def object_history_page(
    model: type[Model], object_id: int, *, before: int | None = None, limit: int = 50
) -> tuple[list[Version], int | None]:
    """One page of an object's versions, newest first (those older than history id `before`),
    and the `before` of the next page, or None. One query, bounded: a customer with a million
    point movements has a million versions."""
    rows = model.history.filter(id=object_id).select_related("history_user__partner")
    if before is not None:
        rows = rows.filter(history_id__lt=before)
    rows = list(rows.order_by("-history_id")[: limit + 1])
    fields = tracked_fields(model)
    label = model_label(model)
    versions = [
        _version(label, row, rows[i + 1] if i + 1 < len(rows) else None, fields)
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


# --- the audit log -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    actor: str = ""
    channel: str = ""
    model: str = ""
    merchant: int | None = None
    q: str = ""

    def models(self) -> list[tuple[str, type[Model]]]:
        if self.model:
            return (
                [(self.model, AUDITED_MODELS[self.model])] if self.model in AUDITED_MODELS else []
            )
        return list(AUDITED_MODELS.items())


@dataclass(frozen=True)
class Cursor:
    """Keyset position: rows strictly after (history_date desc, model asc, history_id desc)."""

    history_date: dt.datetime
    model: str
    history_id: int

    def encode(self) -> str:
        raw = json.dumps([self.history_date.isoformat(), self.model, self.history_id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            date, model, history_id = json.loads(raw)
            moment = parse_datetime(date)
            if moment is None or model not in AUDITED_MODELS or not isinstance(history_id, int):
                return None
            return cls(moment, model, history_id)
        except (ValueError, TypeError, RecursionError):
            return None


def _actor_ids(actor: str) -> list[int]:
    User = get_user_model()
    return list(
        User.objects.filter(Q(username=actor) | Q(partner__name=actor)).values_list("id", flat=True)
    )


def _table_queryset(label: str, model: type[Model], filters: AuditFilters, actor_ids, cursor):
    qs = model.history.all()
    if filters.since:
        qs = qs.filter(history_date__gte=filters.since)
    if filters.until:
        qs = qs.filter(history_date__lt=filters.until)
    if actor_ids is not None:
        qs = qs.filter(history_user_id__in=actor_ids)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.merchant is not None:
        qs = qs.filter(**{MERCHANT_COLUMN.get(model, "merchant_id"): filters.merchant})
    if filters.q:
        qs = qs.filter(history_change_reason__icontains=filters.q)
    if cursor is not None:
        if label > cursor.model:
            qs = qs.filter(history_date__lte=cursor.history_date)
        elif label < cursor.model:
            qs = qs.filter(history_date__lt=cursor.history_date)
        else:
            # The first condition alone bounds the index scan on history_date; the OR alone
            # would not, and each page would scan every row newer than the cursor again.
            qs = qs.filter(history_date__lte=cursor.history_date).filter(
                Q(history_date__lt=cursor.history_date)
                | Q(history_date=cursor.history_date, history_id__lt=cursor.history_id)
            )
    return qs.order_by("-history_date", "-history_id")


def _meta_columns() -> tuple[str, ...]:
    """What `_versions` reads of a historical row besides its tracked fields, in this order."""
    username = get_user_model().USERNAME_FIELD
    return (
        "history_id",
        "history_date",
        "history_type",
        "history_change_reason",
        "channel",
        "operation",
        "request_id",
        "history_user_id",
        f"history_user__{username}",
        "history_user__partner__name",
    )


def _version_rows(model: type[Model], qs):
    """`qs` (historical rows of `model`) as the tuples `_versions` reads: the columns of
    `_meta_columns()`, the tracked fields, then the history id of the previous version of the
    same object (or None). Slice it as you like; it runs no query."""
    history = model.history.model
    previous_id = Subquery(
        history.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
        .order_by("-history_id")
        .values("history_id")[:1]
    )
    return qs.annotate(previous_id=previous_id).values_list(
        *_meta_columns(), *_fields(model), "previous_id"
    )


@cache
def _native_timestamptz_loader():
    """psycopg's C loader for timestamptz, or None (no psycopg 3 with its C extension).

    Django registers a pure-Python timestamptz loader on its connections (it subclasses
    psycopg's Python loader to pin the time zone; Django ticket #36960), which parses every
    value with Python code: reading 1,000 point-transaction history rows took 17.6 ms, 14.7
    of them for their two timestamps; 3.7 ms with the C loader (100.8 against 18.6 ms under
    tracemalloc). The C loader gives the same values (aware, in `datetime.UTC`) when the
    session time zone is UTC, which Django sets with USE_TZ and no database TIME_ZONE;
    `_fetch` checks both, per query.
    """
    try:
        import psycopg
        from psycopg.pq import Format
        from psycopg.types.datetime import TimestamptzLoader
    except ImportError:  # pragma: no cover - psycopg 3 is a dependency
        return None
    oid = psycopg.adapters.types["timestamptz"].oid
    loader = psycopg.adapters.get_loader(oid, Format.TEXT)
    return None if loader is None or loader is TimestamptzLoader else loader


def _fetch(qs) -> list[tuple]:
    """`list(qs)` for a `values_list` queryset, exactly, with timestamps read in C where
    `_native_timestamptz_loader` allows: the same SQL, cursor and converters as Django's."""
    loader = _native_timestamptz_loader()
    connection = connections[qs.db]
    if loader is None or connection.vendor != "postgresql" or connection.timezone is not dt.UTC:
        return list(qs)
    compiler = qs.query.get_compiler(using=qs.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return []
    if not sql:
        return []
    with connection.cursor() as cursor:
        driver = cursor.cursor
        if (
            getattr(driver, "adapters", None) is not None
            and driver.connection.info.timezone is dt.UTC
        ):
            driver.adapters.register_loader("timestamptz", loader)  # this cursor only
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if compiler.has_extra_select:
        rows = [row[: compiler.col_count] for row in rows]
    return list(compiler.results_iter(results=[rows], tuple_expected=True))


def _previous_values(model: type[Model], rows: list[tuple]) -> dict[int, tuple]:
    """The tracked fields of the previous versions of `rows` (from `_version_rows`), by
    history id: one query, none when no row has a previous version."""
    previous_ids = [row[-1] for row in rows if row[-1] is not None]
    if not previous_ids:
        return {}
    qs = model.history.model.objects.filter(history_id__in=previous_ids)
    return {row[-1]: row[:-1] for row in _fetch(qs.values_list(*_fields(model), "history_id"))}


def _actor(user_id, username, partner) -> str:
    """`actor_label` of a row's user, from the columns `_version_rows` joins."""
    if partner is not None:
        return partner
    return username if user_id is not None else "system"


def _versions(label: str, model: type[Model], rows: list[tuple], previous: dict) -> list[Version]:
    """Versions of `rows` (from `_version_rows`), in their order, with their changes from
    the `previous` versions (`_previous_values`)."""
    fields = _fields(model)
    labels = _field_labels(fields)
    meta = len(_meta_columns())
    id_at = meta + fields.index("id")
    versions = []
    for row in rows:
        (hid, date, kind, reason, channel, operation, request_id, user_id, username,
         partner) = row[:meta]  # fmt: skip
        versions.append(
            Version(
                model=label,
                object_id=row[id_at],
                history_id=hid,
                history_date=date,
                history_type=kind,
                actor=_actor(user_id, username, partner),
                channel=channel,
                operation=operation,
                reason=reason or "",
                request_id=request_id,
                changes=[] if kind == "-" else _diff(row[meta:-1], previous.get(row[-1]), labels),
            )
        )
    return versions


def _with_changes(label: str, model: type[Model], rows: list) -> dict[int, Version]:
    """Versions of `rows` ((history_date, history_id) of one table), by history id: two
    queries."""
    qs = model.history.model.objects.filter(history_id__in=[r[1] for r in rows])
    found = _fetch(_version_rows(model, qs))
    versions = _versions(label, model, found, _previous_values(model, found))
    return {v.history_id: v for v in versions}


def _order_key(history_date: dt.datetime, label: str, history_id: int) -> tuple:
    # Newest first; ties by model label, then by history id, newest first.
    return (-history_date.timestamp(), label, -history_id)


def audit_log_page(
    filters: AuditFilters, *, limit: int = 50, cursor: Cursor | None = None
) -> tuple[list[Version], Cursor | None]:
    """One page of the audit log, newest first, and the cursor of the next page (or None)."""
    actor_ids = _actor_ids(filters.actor) if filters.actor else None
    streams = []
    for label, model in filters.models():
        rows = _table_queryset(label, model, filters, actor_ids, cursor).values_list(
            "history_date", "history_id"
        )[: limit + 1]
        streams.append([(date, label, hid) for date, hid in rows])
    merged = heapq.merge(*streams, key=lambda r: _order_key(*r))
    page = [row for _, row in zip(range(limit + 1), merged, strict=False)]
    has_more = len(page) > limit
    page = page[:limit]
    by_label: dict[str, list] = {}
    for date, label, hid in page:
        by_label.setdefault(label, []).append((date, hid))
    versions = {}
    for label, rows in by_label.items():
        for hid, version in _with_changes(label, AUDITED_MODELS[label], rows).items():
            versions[(label, hid)] = version
    ordered = [versions[(label, hid)] for _, label, hid in page]
    next_cursor = Cursor(page[-1][0], page[-1][1], page[-1][2]) if has_more and page else None
    return ordered, next_cursor


EXPORT_BATCH = 2000  # rows per table and query: 1000 was 10% slower, 5000 hardly faster


def _table_batches(label, model, filters: AuditFilters, actor_ids, batch: int):
    """One table's part of the audit log, newest first, in keyset batches: each batch's
    rows (from `_version_rows`) and their previous versions (`_previous_values`)."""
    cursor = None
    while True:
        qs = _table_queryset(label, model, filters, actor_ids, cursor)
        rows = _fetch(_version_rows(model, qs)[:batch])
        yield rows, _previous_values(model, rows)
        if len(rows) < batch:
            return
        cursor = Cursor(rows[-1][1], label, rows[-1][0])


def iter_audit_log(filters: AuditFilters, *, batch: int | None = None) -> Iterator[Version]:
    """The whole filtered audit log, newest first, in constant memory.

    The same versions in the same order as following `audit_log_page`'s cursors, but each
    table is read on its own in keyset batches of `batch` rows (default `EXPORT_BATCH`) and
    the tables are merged as they stream, so no row is read twice. Nothing is read before
    the first version is asked for.
    """
    batch = batch or EXPORT_BATCH
    actor_ids = _actor_ids(filters.actor) if filters.actor else None

    def table(label, model):
        for rows, previous in _table_batches(label, model, filters, actor_ids, batch):
            yield from _versions(label, model, rows, previous)

    tables = [table(label, model) for label, model in filters.models()]
    yield from heapq.merge(*tables, key=lambda v: _order_key(v.history_date, v.model, v.history_id))


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
]


def _text_cell(value: str) -> str:
    # Free text that a spreadsheet would run as a formula is quoted (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_rows(versions: Iterable[Version]) -> Iterator[list[str]]:
    """The audit log's CSV, as rows for `csv.writer`: what `audit_log_csv` writes."""
    yield CSV_COLUMNS
    for v in versions:
        yield [
            v.history_date.isoformat(),
            v.model,
            str(v.object_id),
            str(v.history_id),
            v.history_type,
            _text_cell(v.actor),
            v.channel,
            v.operation,
            _text_cell(v.reason),
            v.request_id,
            json.dumps(
                [{"field": c.field, "old": c.old, "new": c.new} for c in v.changes], default=str
            ),
        ]


# --- the CSV export, written straight from the rows ----------------------------------------
#
# `audit_log_csv` writes exactly what `csv.writer` writes for `csv_rows(iter_audit_log(...))`
# (the tests hold it to that, byte for byte), without making a Version and a Change per field
# of every row, a dict per change for json.dumps, or a pass of csv.writer: those took three
# quarters of the export's time.

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
def _json_heads(labels: tuple[str, ...], hidden: frozenset[str]) -> tuple[str | None, ...]:
    """The start of each field's change object in the changes column; None for a field
    left out of it."""
    return tuple(
        None if label in hidden else '{"field": ' + encode_basestring_ascii(label) + ', "old": '
        for label in labels
    )


def _changes_json(new: Sequence, old: Sequence | None, heads: Sequence[str | None]) -> str:
    """The changes column: json.dumps of `_diff(new, old, labels)` as `csv_rows` makes it,
    character for character, without the fields whose head is None."""
    json_of = _json_of
    if old is None:
        parts = [
            f'{head}null, "new": {json_of(value)}}}'
            for head, value in zip(heads, new, strict=True)
            if value not in (None, "") and head is not None
        ]
    else:
        parts = [
            f'{head}{json_of(before)}, "new": {json_of(after)}}}'
            for head, after, before in zip(heads, new, old, strict=True)
            if before != after and head is not None
        ]
    return f"[{', '.join(parts)}]" if parts else "[]"


def _csv_cell(value: str) -> str:
    """`value` as csv.writer writes it (the excel dialect, QUOTE_MINIMAL)."""
    if '"' in value:
        return '"' + value.replace('"', '""') + '"'
    if "," in value or "\n" in value or "\r" in value:
        return '"' + value + '"'
    return value


def _csv_lines(label: str, model: type[Model], rows: list[tuple], previous: dict, hidden):
    """(merge key..., CSV line) of each row (from `_version_rows`), in the rows' order."""
    fields = _fields(model)
    heads = _json_heads(_field_labels(fields), frozenset(hidden))
    meta = len(_meta_columns())
    id_at = meta + fields.index("id")
    cell, text = _csv_cell, _text_cell
    lines = []
    for row in rows:
        (hid, date, kind, reason, channel, operation, request_id, user_id, username,
         partner) = row[:meta]  # fmt: skip
        changes = "[]" if kind == "-" else _changes_json(row[meta:-1], previous.get(row[-1]), heads)
        line = ",".join(
            (
                date.isoformat(),  # digits, "-", ":", "T", "." and "+": never quoted
                label,
                str(row[id_at]),
                str(hid),
                cell(kind),
                cell(text(_actor(user_id, username, partner))),
                cell(channel),
                cell(operation),
                cell(text(reason or "")),
                cell(request_id),
                cell(changes),
            )
        )
        lines.append((*_order_key(date, label, hid), line + "\r\n"))
    return lines


def audit_log_csv(
    filters: AuditFilters,
    *,
    hidden: Mapping[str, Collection[str]] | None = None,
    batch: int | None = None,
    rows_per_chunk: int = 200,
) -> Iterator[str]:
    """The filtered audit log as CSV text, in chunks of `rows_per_chunk` rows: what
    `csv.writer` writes for `csv_rows(iter_audit_log(filters, batch=batch))`, read the same
    way (each table in keyset batches, merged as they stream; constant memory; nothing read
    before the first chunk is asked for).

    `hidden` maps a model label to the fields its changes leave out (the staff API hides
    partner credentials).
    """
    batch = batch or EXPORT_BATCH
    hidden = hidden or {}
    actor_ids = _actor_ids(filters.actor) if filters.actor else None

    def table(label, model):
        for rows, previous in _table_batches(label, model, filters, actor_ids, batch):
            yield from _csv_lines(label, model, rows, previous, hidden.get(label, ()))

    merged = heapq.merge(*[table(label, model) for label, model in filters.models()])
    chunk = [",".join(CSV_COLUMNS) + "\r\n"]
    for _date, _label, _id, line in merged:
        chunk.append(line)
        if len(chunk) >= rows_per_chunk:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)
