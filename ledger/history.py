"""Reading history: versions of one object and the audit log across every audited model.

Both the admin and the staff API present history through this module, so "who, when, through
which channel, why, before and after" reads the same everywhere. Queries are bounded: a page
of the audit log is one indexed query per audited table plus two per table on the page to
compute the changes, whatever the size of the tables. The CSV export streams each table in
keyset batches (two queries per batch) and merges them, in constant memory.

The audit log reads rows as tuples (`values_list`), not model instances: an export turns
hundreds of thousands of rows into versions, and instantiating each historical row and its
previous version (with its user and partner) was most of the time it took. Each version's
previous version is found by a correlated subquery, one probe of the (id, history_id) index
of its historical table (`accounts.models.AuditHistoricalRecords`).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import heapq
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import islice
from json.encoder import encode_basestring_ascii
from typing import NamedTuple

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


class Change(NamedTuple):
    """One field of a version: its value before and after (None before a creation).

    A named tuple rather than a dataclass: an export makes millions of them."""

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
    simple = _SIMPLE_TYPES  # _plain's own shortcut, inlined: most values are simple
    if old is None:
        return [
            Change(label, None, value if type(value) in simple else _plain(value))
            for label, value in zip(labels, new, strict=True)
            if value not in (None, "")
        ]
    return [
        Change(
            label,
            before if before is None or type(before) in simple else _plain(before),
            after if after is None or type(after) in simple else _plain(after),
        )
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


def object_history(model: type[Model], object_id: int) -> list[Version]:
    """Every version of one object, newest first, each with what changed from the one before."""
    rows = list(
        model.history.filter(id=object_id)
        .select_related("history_user__partner")
        .order_by("-history_id")
    )
    fields = tracked_fields(model)
    label = model_label(model)
    return [
        _version(label, row, rows[i + 1] if i + 1 < len(rows) else None, fields)
        for i, row in enumerate(rows)
    ]


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
        *_meta_columns(), *tracked_fields(model), "previous_id"
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


def _versions(label: str, model: type[Model], rows: list[tuple]) -> list[Version]:
    """Versions of `rows` (from `_version_rows`), in their order, with their changes: one
    more query, for the previous versions (none when no row has one)."""
    fields = tuple(tracked_fields(model))
    labels = _field_labels(fields)
    meta = len(_meta_columns())
    id_at = meta + fields.index("id")
    previous_ids = [row[-1] for row in rows if row[-1] is not None]
    previous = {}
    if previous_ids:
        previous = {
            row[-1]: row[:-1]
            for row in _fetch(
                model.history.model.objects.filter(history_id__in=previous_ids).values_list(
                    *fields, "history_id"
                )
            )
        }
    versions = []
    for row in rows:
        (hid, date, kind, reason, channel, operation, request_id, user_id, username,
         partner) = row[:meta]  # fmt: skip
        previous_id = row[-1]
        if partner is not None:
            actor = partner
        elif user_id is not None:
            actor = username
        else:
            actor = "system"
        versions.append(
            Version(
                model=label,
                object_id=row[id_at],
                history_id=hid,
                history_date=date,
                history_type=kind,
                actor=actor,
                channel=channel,
                operation=operation,
                reason=reason or "",
                request_id=request_id,
                changes=[]
                if kind == "-"
                else _diff(row[meta:-1], previous.get(previous_id), labels),
            )
        )
    return versions


def _with_changes(label: str, model: type[Model], rows: list) -> dict[int, Version]:
    """Versions of `rows` ((history_date, history_id) of one table), by history id: two
    queries."""
    qs = model.history.model.objects.filter(history_id__in=[r[1] for r in rows])
    return {v.history_id: v for v in _versions(label, model, _fetch(_version_rows(model, qs)))}


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


EXPORT_BATCH = 1000


def _table_log(label, model, filters: AuditFilters, actor_ids, batch: int) -> Iterator[Version]:
    """One table's part of the audit log, newest first, read in keyset batches."""
    cursor = None
    while True:
        qs = _table_queryset(label, model, filters, actor_ids, cursor)
        versions = _versions(label, model, _fetch(_version_rows(model, qs)[:batch]))
        yield from versions
        if len(versions) < batch:
            return
        cursor = Cursor(versions[-1].history_date, label, versions[-1].history_id)


def iter_audit_log(filters: AuditFilters, *, batch: int | None = None) -> Iterator[Version]:
    """The whole filtered audit log, newest first, in constant memory.

    The same versions in the same order as following `audit_log_page`'s cursors, but each
    table is read on its own in keyset batches of `batch` rows (default `EXPORT_BATCH`) and
    the tables are merged as they stream, so no row is read twice. Nothing is read before
    the first version is asked for.
    """
    batch = batch or EXPORT_BATCH
    actor_ids = _actor_ids(filters.actor) if filters.actor else None
    tables = [
        _table_log(label, model, filters, actor_ids, batch) for label, model in filters.models()
    ]
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


_JSON = json.JSONEncoder(default=str)  # what json.dumps(..., default=str) makes each time


def _json_value(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    return _JSON.encode(value)  # anything else exactly as json.dumps(..., default=str) would


_JSON_HEADS: dict[str, str] = {}


def changes_json(changes: list[Change]) -> str:
    """`json.dumps([{"field": .., "old": .., "new": ..}, ...], default=str)`, character for
    character, built from strings: it is the CSV export's widest column, and encoding it
    through a dict per change took a sixth of the export's time."""
    if not changes:
        return "[]"
    heads = _JSON_HEADS
    parts = []
    for name, old, new in changes:
        head = heads.get(name)
        if head is None:
            head = heads[name] = '{"field": ' + encode_basestring_ascii(name) + ', "old": '
        parts.append(f'{head}{_json_value(old)}, "new": {_json_value(new)}}}')
    return f"[{', '.join(parts)}]"


def csv_rows(versions: Iterable[Version]) -> Iterator[list[str]]:
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
            changes_json(v.changes),
        ]


def csv_stream(versions: Iterable[Version], *, rows_per_chunk: int = 200) -> Iterator[str]:
    """`csv_rows` written as CSV text, in chunks of `rows_per_chunk` rows: the body of a
    streamed export (a chunk per row would cost a write to the client, and a pass through
    the response machinery, per row)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = csv_rows(versions)
    while chunk := list(islice(rows, rows_per_chunk)):
        writer.writerows(chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
