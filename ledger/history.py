"""Reading history: versions of one object and the audit log across every audited model.

Both the admin and the staff API present history through this module, so "who, when, through
which channel, why, before and after" reads the same everywhere. Queries are bounded: a page
of the audit log is one indexed query per audited table plus two per table on the page to
compute the changes, whatever the size of the tables.
"""

from __future__ import annotations

import base64
import datetime as dt
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
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


def _plain(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "as_tuple"):  # Decimal
        return str(value)
    return value


def _changes(row, previous, fields: list[str]) -> list[Change]:
    changes = []
    for name in fields:
        new = getattr(row, name)
        old = getattr(previous, name) if previous is not None else None
        if previous is None and new in (None, ""):
            continue
        if previous is None or old != new:
            label = name[:-3] if name.endswith("_id") and name != "id" else name
            changes.append(Change(label, _plain(old), _plain(new)))
    return changes


def _version(label: str, row, previous, fields: list[str]) -> Version:
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
            qs = qs.filter(
                Q(history_date__lt=cursor.history_date)
                | Q(history_date=cursor.history_date, history_id__lt=cursor.history_id)
            )
    return qs.order_by("-history_date", "-history_id")


def _with_changes(label: str, model: type[Model], rows: list) -> dict[int, Version]:
    """Versions of `rows` (one table), with their changes, in two queries."""
    history = model.history.model
    previous_id = Subquery(
        history.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
        .order_by("-history_id")
        .values("history_id")[:1]
    )
    full = list(
        history.objects.filter(history_id__in=[r[1] for r in rows])
        .select_related("history_user__partner")
        .annotate(previous_id=previous_id)
    )
    previous = history.objects.in_bulk([r.previous_id for r in full if r.previous_id])
    fields = tracked_fields(model)
    return {
        row.history_id: _version(label, row, previous.get(row.previous_id), fields) for row in full
    }


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
    # Newest first; ties by model label, then by history id, newest first.
    merged = heapq.merge(*streams, key=lambda r: (-r[0].timestamp(), r[1], -r[2]))
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


def iter_audit_log(filters: AuditFilters, *, batch: int = 1000) -> Iterator[Version]:
    """The whole filtered audit log, newest first, in constant memory (keyset batches)."""
    cursor = None
    while True:
        versions, cursor = audit_log_page(filters, limit=batch, cursor=cursor)
        yield from versions
        if cursor is None:
            return


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
