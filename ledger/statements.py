"""One-statement ledger moves for the hot paths, on PostgreSQL.

A move changes a customer's cached balance or points by a signed amount and appends the
ledger row that explains it. Through the ORM that is a locking SELECT, two saves and two
simple-history records: about 4 ms of Python per request (`make profile`). Here it is one
data-modifying CTE, one round trip:

    WITH customer AS (UPDATE customer SET points = points + delta
                      WHERE id = ... AND points + delta >= 0 RETURNING *),
         entry    AS (INSERT INTO ledger row SELECT ..., customer.points FROM customer
                      RETURNING *),
         customer_history AS (INSERT INTO historical customer SELECT ... FROM customer),
         entry_history    AS (INSERT INTO historical entry SELECT ... FROM entry),
         event            AS (INSERT INTO event SELECT ..., customer.event_sequence,
                              jsonb_build_object(... entry ...) FROM customer, entry)
    SELECT * FROM entry

The same UPDATE counts the customer's event (`event_sequence + 1`), and the event row (the
outbox, ledger.events) is written by the same statement, so it exists iff the move committed.

The conditional UPDATE takes the customer's row lock and re-checks its condition on the
newest row version when it had to wait (READ COMMITTED), so concurrent moves serialise on
the customer exactly as the ORM path's SELECT ... FOR UPDATE does, and never go below zero.
Every CHECK, UNIQUE and trigger applies as before; a violation aborts the whole statement.

The historical rows get the columns simple-history would write, derived from the historical
models' fields (so a new model field needs no change here), attributed from the current
`audited()` block like every other history row. `tests/ledger/test_statements.py` runs the
ORM path and this one side by side and compares every column they leave.

The Stamp API's add and remove (`lock_stamp`, then `move_stamp`) take two statements: the
first locks the customer's row and the stamp, the second writes the count, its history row,
the customer's event count and the event. A removal's partner daily cap is counted in the
second, whose READ COMMITTED snapshot is taken after the stamp's lock, so concurrent removals
cannot both pass it (the comment above `lock_stamp` has the argument;
tests/ledger/test_stamp_statements.py compares both paths and races the cap).
"""

# ruff: noqa: S608 (the SQL is built from models' _meta names; every value is a parameter)

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.utils import timezone

from accounts.models import Customer
from ledger import events
from ledger.models import Event, Stamp
from loyalty import rows
from loyalty.audit import UnattributedChange, current
from loyalty.db import Claim, is_postgresql, prepared_cursor
from loyalty.request_id import current_request_id

# Historical fields filled from the audit context, not from the tracked row.
_ATTRIBUTION = ("history_date", "history_change_reason", "history_user_id", "channel")
_ATTRIBUTION += ("operation", "request_id", "approved_by_id", "approval_id", "approval_reason")


def available() -> bool:
    return is_postgresql(connection)


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _cast(field: models.Field) -> str:
    return f"CAST(%s AS {field.db_type(connection)})"


@cache
def _history_insert(
    model: type[models.Model], source: str, history_type: str
) -> tuple[str, tuple[str, ...]]:
    """`INSERT INTO <history> (...) SELECT ... FROM <source>` and the attribution parameters
    it takes, in order. `history_type` is simple-history's "+" (created) or "~" (changed)."""
    history = model.history.model
    tracked = {f.attname: f for f in model._meta.concrete_fields}
    columns, values, params = [], [], []
    for field in history._meta.concrete_fields:
        if field.attname == "history_id":
            continue  # its sequence
        columns.append(_qn(field.column))
        if field.attname in tracked:
            values.append(f"{source}.{_qn(tracked[field.attname].column)}")
        elif field.attname == "history_type":
            values.append(f"'{history_type}'")
        elif field.attname in _ATTRIBUTION:
            values.append(_cast(field))
            params.append(field.attname)
        else:
            raise LookupError(f"{history.__name__}.{field.attname}: no source for this column")
    sql = (
        f"INSERT INTO {_qn(history._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {source}"
    )
    return sql, tuple(params)


def _attribution() -> dict:
    context = current()
    if context is None:
        raise UnattributedChange("ledger moves happen only inside loyalty.audit.audited()")
    actor = context.actor
    approval = context.approval
    return {
        "history_date": timezone.now(),
        "history_change_reason": context.reason or None,
        "history_user_id": getattr(actor, "pk", None),
        "channel": context.channel,
        "operation": context.operation,
        "request_id": current_request_id(),
        "approved_by_id": approval.approver.pk if approval else None,
        "approval_id": approval.approval_id if approval else None,
        "approval_reason": approval.reason if approval else "",
    }


# Entry columns that name the customer: taken from the moved row, so a move that finds its
# customer by a look-up (`lookup`) writes the one it found.
_FROM_CUSTOMER = {"customer_id": "id", "merchant_id": "merchant_id"}


@cache
def _move_sql(
    model, customers, column: str, after: str, lookup=(), claim=None, settle=None, either=(),
    guard=None,
):  # fmt: skip
    """The statement of `move` for one kind of entry, and the fields whose values it takes.

    The customer is `id = %s`, or with `lookup` (column names) the first whose columns equal
    the values given; with `claim` (a model), the claim row is inserted first and the move
    happens only if it was new. One row comes back in every case: whether the claim was
    new, the customer found, then the entry's columns and the moved customer's (NULL when
    nothing moved). With `settle` (a `Settle.shape()`), the settled row is locked first
    (`hold`) and the move happens only if it matched; `settled` then writes it, last.
    With `either` (column names), the look-up also needs one of those columns equal to its
    value, and the move happens only if exactly one customer matches (`matches`: how many,
    up to 2). With `guard` (a model and a field), that model's row by primary key must hold
    the value given in that field for the move to happen (`guard`: the value it holds)."""
    qn = _qn
    table, pk = qn(customers._meta.db_table), qn(customers._meta.pk.column)
    entry_fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    insert_values = []
    for f in entry_fields:
        if f.attname == after:
            insert_values.append(f"customer.{qn(column)}")
        elif f.attname in _FROM_CUSTOMER:
            insert_values.append(f"customer.{qn(_FROM_CUSTOMER[f.attname])}")
        else:
            insert_values.append(_cast(f))
    customer_history, customer_keys = _history_insert(customers, "customer", "~")
    entry_history, entry_keys = _history_insert(model, "entry", "+")
    event_insert, event_keys = _event_insert(model)
    column_sql = qn(column)
    sequence = qn(customers._meta.get_field("event_sequence").column)
    ctes, claimed = [], "TRUE"
    if claim is not None:
        fields = [f for f in claim._meta.concrete_fields if not f.primary_key]
        ctes.append(
            f"claim AS (INSERT INTO {qn(claim._meta.db_table)} "
            f"({', '.join(qn(f.column) for f in fields)}) "
            f"VALUES ({', '.join(_cast(f) for f in fields)}) ON CONFLICT DO NOTHING RETURNING 1)"
        )
        claimed = "EXISTS (SELECT 1 FROM claim)"
    if settle is not None:
        ctes.append(_hold_sql(settle))
        claimed = "EXISTS (SELECT 1 FROM hold)"
    guarded, guard_value = "", "CAST(NULL AS bigint)"
    if guard is not None:
        guard_model, guard_field = guard[0], guard[0]._meta.get_field(guard[1])
        ctes.append(
            f"guard AS (SELECT {qn(guard_field.column)} AS value "
            f"FROM {qn(guard_model._meta.db_table)} "
            f"WHERE {qn(guard_model._meta.pk.column)} = CAST(%s AS bigint))"
        )
        guard_value = "(SELECT value FROM guard)"
        guarded = f" AND {guard_value} = {_cast(guard_field)}"
    matches = "CAST(NULL AS bigint)"
    if lookup:
        where = " AND ".join(
            f"{qn(customers._meta.get_field(name).column)} = %s" for name in lookup
        )
        if either:
            any_of = " OR ".join(
                f"{qn(customers._meta.get_field(name).column)} = %s" for name in either
            )
            ctes.append(
                f"target AS (SELECT {pk} FROM {table} WHERE {where} AND ({any_of}) "
                f"ORDER BY {pk} LIMIT 2)"
            )
            matches = "(SELECT COUNT(*) FROM target)"
            which = found = f"(SELECT {pk} FROM target WHERE {matches} = 1)"
        else:
            ctes.append(f"target AS (SELECT {pk} FROM {table} WHERE {where} ORDER BY {pk} LIMIT 1)")
            which, found = f"(SELECT {pk} FROM target)", f"(SELECT {pk} FROM target)"
    else:
        which, found = "%s", "CAST(NULL AS bigint)"
    ctes += [
        f"customer AS (UPDATE {table} "
        f"SET {column_sql} = {column_sql} + %s, {sequence} = {sequence} + 1 "
        f"WHERE {pk} = {which} AND {column_sql} + %s >= 0 AND {claimed}{guarded} RETURNING *)",
        f"entry AS (INSERT INTO {qn(model._meta.db_table)} "
        f"({', '.join(qn(f.column) for f in entry_fields)}) "
        f"SELECT {', '.join(insert_values)} FROM customer RETURNING *)",
        f"customer_history AS ({customer_history})",
        f"entry_history AS ({entry_history})",
        f"event AS ({event_insert})",
    ]
    if settle is not None:
        ctes.append(_settled_sql(settle, column, model._meta.pk.column))
    returned = [f"entry.{qn(f.column)}" for f in model._meta.concrete_fields]
    returned += [f"customer.{qn(f.column)}" for f in customers._meta.concrete_fields]
    sql = (
        f"WITH {', '.join(ctes)} "
        f"SELECT {claimed}, {found}, {matches}, {guard_value}, {', '.join(returned)} "
        "FROM (SELECT 1) AS one LEFT JOIN entry ON TRUE LEFT JOIN customer ON TRUE"
    )
    inserted = tuple(
        f for f in entry_fields if f.attname != after and f.attname not in _FROM_CUSTOMER
    )
    claim_fields = () if claim is None else tuple(fields)
    return sql, inserted, customer_keys + entry_keys, event_keys, claim_fields


@dataclass
class Settle:
    """A row that a move's statement settles with the move, in the same statement (so in one
    round trip, and in autocommit one transaction): the row of `model` with primary key `pk`
    is locked first (FOR UPDATE) if its fields equal `expect`, the move happens only then,
    and the same statement sets the row's fields `values` and, from the move, the fields
    named by `before` and `after` (the moved column's value before and after) and `entry`
    (the saved entry's primary key). `taken`: True the row matched (it is settled iff the
    move happened), False it did not (nothing moved), None not tried yet.

    A row that another transaction changes meanwhile is re-read after its lock (READ
    COMMITTED re-checks `expect` on the newest version), so two statements settling one
    row move once. ledger.batches settles a batch row with its ledger move this way."""

    model: type[models.Model]
    pk: int
    expect: dict  # attname -> value the row must hold
    values: dict  # attname -> value it gets
    before: str
    after: str
    entry: str
    taken: bool | None = None

    def shape(self) -> tuple:
        """What the statement's text depends on (its cache key)."""
        return (self.model, tuple(self.expect), tuple(self.values), self.before, self.after,
                self.entry)  # fmt: skip

    def params(self, delta: int) -> tuple[list, list]:
        """The parameters of `hold` and of `settled`, in the order of `_settle_fields`."""
        expect, values = _settle_fields(self.shape())
        hold = [self.pk] + [f.get_db_prep_save(self.expect[f.attname], connection) for f in expect]
        settled = [f.get_db_prep_save(self.values[f.attname], connection) for f in values]
        return hold, [*settled, delta]


@cache
def _settle_fields(shape: tuple) -> tuple[list, list]:
    model, expect, values = shape[:3]
    return [model._meta.get_field(n) for n in expect], [model._meta.get_field(n) for n in values]


def _hold_sql(shape: tuple) -> str:
    model = shape[0]
    expect, _values = _settle_fields(shape)
    pk = _qn(model._meta.pk.column)
    where = "".join(f" AND {_qn(f.column)} = {_cast(f)}" for f in expect)
    return (
        f"hold AS (SELECT {pk} FROM {_qn(model._meta.db_table)} "
        f"WHERE {pk} = CAST(%s AS bigint){where} FOR UPDATE)"
    )


def _settled_sql(shape: tuple, column: str, entry_pk: str) -> str:
    model, before, after, entry = shape[0], *shape[3:]
    _expect, values = _settle_fields(shape)
    field = model._meta.get_field
    pk = _qn(model._meta.pk.column)
    sets = [f"{_qn(f.column)} = {_cast(f)}" for f in values]
    sets += [
        f"{_qn(field(before).column)} = customer.{_qn(column)} - CAST(%s AS bigint)",
        f"{_qn(field(after).column)} = customer.{_qn(column)}",
        f"{_qn(field(entry).column)} = entry.{_qn(entry_pk)}",
    ]
    return (
        f"settled AS (UPDATE {_qn(model._meta.db_table)} SET {', '.join(sets)} "
        f"FROM customer, entry WHERE {_qn(model._meta.db_table)}.{pk} = (SELECT {pk} FROM hold))"
    )


# Event columns taken from the move's customer row; `data` is built from the entry, `txid`
# by the table's trigger, the rest are parameters (ledger.events.attribution and identity).
_EVENT_FROM_CUSTOMER = {
    "merchant_id": "merchant_id",
    "customer_id": "id",
    "customer_sequence": "event_sequence",
}


def _event_row(
    from_row: dict[str, str], data_sql: str, data_keys: tuple[str, ...], sources: str
) -> tuple[str, tuple[str, ...]]:
    """`INSERT INTO <event> (...) SELECT ... FROM <sources>` and its parameter keys in order:
    columns in `from_row` from the moved rows (SQL expressions), `data` as `data_sql` (whose
    parameters are `data_keys`), `txid` by the table's trigger, the rest parameters."""
    columns, values, keys = [], [], []
    for field in Event._meta.concrete_fields:
        if field.primary_key or field.attname == "txid":
            continue
        columns.append(_qn(field.column))
        if field.attname in from_row:
            values.append(from_row[field.attname])
        elif field.attname == "data":
            values.append(data_sql)
            keys += data_keys
        else:
            values.append(_cast(field))
            keys.append(field.attname)
    sql = (
        f"INSERT INTO {_qn(Event._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {sources}"
    )
    return sql, tuple(keys)


def _event_insert(model) -> tuple[str, tuple[str, ...]]:
    """`INSERT INTO <event> (...) SELECT ... FROM customer, entry` and its parameter keys;
    `original` (a revert's deduction) comes from Python as a jsonb object."""
    return _event_row(
        {name: f"customer.{_qn(column)}" for name, column in _EVENT_FROM_CUSTOMER.items()},
        f"{events.entry_sql(model, 'entry', 'customer')} || CAST(%s AS jsonb)",
        ("extra_data",),
        "customer, entry",
    )


@dataclass(frozen=True)
class Moved:
    """What a move's statement did: `entry` saved (None: nothing moved) and `customer` as the
    move left it; `found` the customer's id a look-up found (None: no such customer)."""

    entry: models.Model | None
    customer: models.Model | None
    found: int | None
    matches: int | None = None  # customers the look-up matched (with `either`; up to 2)
    guard: object = None  # the value the guard row holds (None: no such row)


@dataclass(frozen=True)
class Guard:
    """A row a move needs: the row of `model` with primary key `pk` must hold `value` in the
    field `field`, read by the move's own statement (e.g. a store of the customer's merchant)."""

    model: type[models.Model]
    field: str
    pk: int
    value: object

    def shape(self) -> tuple:
        return (self.model, self.field)


def _run(
    *,
    customers,
    key,
    column,
    delta,
    entry,
    after,
    original,
    lookup=None,
    claim=None,
    settle=None,
    either=None,
    guard=None,
):
    model = type(entry)
    lookup_names, either_names = tuple(lookup or ()), tuple(either or ())
    sql, inserted, attribution_keys, event_keys, claim_fields = _move_sql(
        model,
        customers,
        column,
        after,
        lookup_names,
        None if claim is None else claim.model,
        None if settle is None else settle.shape(),
        either_names,
        None if guard is None else guard.shape(),
    )
    attribution = _attribution()
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: `connection` is a proxy per access
    params = [f.get_db_prep_save(claim.values[f.attname], db) for f in claim_fields]
    settled: list = []
    if settle is not None:
        hold, settled = settle.params(delta)
        params += hold
    if guard is not None:
        params.append(guard.pk)
    if lookup_names:
        params += [
            customers._meta.get_field(name).get_db_prep_value(values[name], db)
            for values, names in ((lookup, lookup_names), (either, either_names))
            for name in names
        ]
        params += [delta, delta]
    else:
        params += [delta, key, delta]
    if guard is not None:
        params.append(guard.value)
    # The entry's values exactly as Django's INSERT would prepare them.
    params += [f.get_db_prep_save(f.pre_save(entry, add=True), db) for f in inserted]
    params += [attribution[key] for key in attribution_keys]
    event = {
        **events.attribution(),
        "event_id": events.new_event_id(),
        "created": attribution["history_date"],
        "extra_data": json.dumps(
            events.approval_data() | ({"original": original} if original is not None else {})
        ),
    }
    params += [event[key] for key in event_keys]
    params += settled
    with prepared_cursor(db) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if claim is not None:
        claim.taken = bool(row[0])
    if settle is not None:
        settle.taken = bool(row[0])
    split = 4 + len(model._meta.concrete_fields)
    moved = row[4] is not None  # the entry's primary key
    return Moved(
        entry=rows.instance(model, row[4:split], db) if moved else None,
        customer=rows.instance(customers, row[split:], db) if moved else None,
        found=row[1],
        matches=row[2],
        guard=row[3],
    )


def move(
    *,
    customer,
    column: str,
    delta: int,
    entry: models.Model,
    after: str,
    original=None,
    settle: Settle | None = None,
):
    """Add `delta` to `customer.<column>` unless it would go below zero, and insert `entry`
    (unsaved) with `<after>` set to the new value; both with their history rows, and the
    event of the move (its data with `original`, when given); with `settle`, only if its
    row matched, and that row settled by the same statement.

    Returns the saved entry, with `customer.<column>` and `customer.event_sequence` updated
    in memory, or None when nothing moved: the move would go below zero, or `settle.taken`
    is False (and nothing was written). Call inside `audited()`.
    """
    moved = _run(
        customers=type(customer),
        key=customer.pk,
        column=column,
        delta=delta,
        entry=entry,
        after=after,
        original=original,
        settle=settle,
    )
    if moved.entry is None:
        return None
    setattr(customer, column, getattr(moved.customer, column))
    customer.event_sequence = moved.customer.event_sequence
    return moved.entry


def move_found(
    *,
    customers,
    lookup: dict,
    column: str,
    delta: int,
    entry: models.Model,
    after: str,
    claim: Claim | None = None,
    either: dict | None = None,
    guard: Guard | None = None,
) -> Moved:
    """`move` for the first customer (of model `customers`) whose fields equal `lookup`,
    found by the same statement, with `claim` inserted by it too (the move happens only if
    the claim is new). One round trip; in autocommit it is its own transaction. The
    entry's customer and merchant are the found customer's. With `either`, the customer must
    also have one of those fields equal to its value, and be the only one that does
    (`Moved.matches`); with `guard`, the guard's row must hold its value (`Moved.guard`).
    Call inside `audited()`."""
    return _run(
        customers=customers,
        key=None,
        column=column,
        delta=delta,
        entry=entry,
        after=after,
        original=None,
        lookup=lookup,
        claim=claim,
        either=either,
        guard=guard,
    )


# Stamp moves (the Stamp API's add and remove), in two statements on PostgreSQL.
#
# 1. `lock_stamp`: the customer's row (FOR NO KEY UPDATE: it holds `event_sequence`), then the
#    stamp (FOR UPDATE), the order every move locks in; found by id, live, and (for a partner)
#    of one of its merchants, so the Stamp API needs no look-up of its own before it. The
#    service checks the locked row (inactive, out of period, redeemed, at 0, at max) in Python,
#    with the ORM path's errors in the ORM path's order.
# 2. `move_stamp`: one data-modifying CTE: the stamp's UPDATE, its history row, the customer's
#    `event_sequence + 1` and the event. A removal's partner daily cap is a condition of that
#    UPDATE: the count of today's corrections on the historical table must be under the cap.
#
# Why the cap is exact under concurrent removals: the count runs in statement 2, whose
# snapshot (READ COMMITTED: one per statement) is taken after statement 1 has the stamp's row
# lock. Every removal that held that lock before has committed (or rolled back) by then, so
# its history row is in the snapshot; every removal after it waits in its own statement 1
# until this transaction ends, then counts this one's row. One statement that both locked
# and counted would not do: its snapshot predates the lock wait, and the re-check after the
# wait (EvalPlanQual) re-reads only the locked row, not the history table, so two removals
# could both count N < cap. tests/ledger/test_stamp_statements.py races 8 removals at cap 3.

_BIGINT = (-(2**63), 2**63 - 1)


@cache
def _lock_stamp_sql(scoped: bool) -> str:
    stamp_table = _qn(Stamp._meta.db_table)
    customer_table = _qn(Customer._meta.db_table)
    scope = f" AND s.{_qn('merchant_id')} = ANY(CAST(%s AS bigint[]))" if scoped else ""
    return (
        f"WITH customer AS (SELECT c.{_qn('id')} FROM {customer_table} c "
        f"WHERE c.{_qn('id')} = (SELECT s.{_qn('customer_id')} FROM {stamp_table} s "
        f"WHERE s.{_qn('id')} = %s AND s.{_qn('deleted_at')} IS NULL{scope}) "
        "FOR NO KEY UPDATE) "
        f"SELECT {', '.join(_qn(f.column) for f in Stamp._meta.concrete_fields)} "
        f"FROM {stamp_table} WHERE {_qn('id')} = %s AND {_qn('deleted_at')} IS NULL "
        f"AND {_qn('customer_id')} = (SELECT {_qn('id')} FROM customer) FOR UPDATE"
    )


def lock_stamp(stamp_id: int, merchant_ids=None) -> Stamp | None:
    """Lock the live stamp `stamp_id` after its customer's row and return it, or None when
    there is none (or none of `merchant_ids`, when given)."""
    if not _BIGINT[0] <= stamp_id <= _BIGINT[1]:
        return None  # as the ORM does: no row can hold it
    params: list = [stamp_id]
    if merchant_ids is not None:
        params.append(sorted(merchant_ids))
    params.append(stamp_id)
    with prepared_cursor(connection) as cursor:
        cursor.execute(_lock_stamp_sql(merchant_ids is not None), params)
        row = cursor.fetchone()
    return None if row is None else rows.instance(Stamp, row)


# The corrections the daily cap counts (ledger.services.stamps._corrections_today).
STAMP_CORRECTIONS = ("stamp_remove", "stamp_set_count")


def _stamp_event_insert() -> tuple[str, tuple[str, ...]]:
    """`INSERT INTO <event> (...) SELECT ... FROM customer, stamp`: `events.stamp_data` in
    SQL, merged with the approval's data; its parameter keys in order."""
    stamp_fields = ", ".join(
        f"'{name}', stamp.{_qn(Stamp._meta.get_field(name).column)}" for name in events.STAMP_FIELDS
    )
    return _event_row(
        {
            "merchant_id": "stamp.merchant_id",
            "customer_id": "customer.id",
            "customer_sequence": "customer.event_sequence",
        },
        f"jsonb_build_object('stamp', jsonb_build_object({stamp_fields}), "
        "'count_before', CAST(%s AS integer)) || CAST(%s AS jsonb)",
        ("count_before", "extra_data"),
        "customer, stamp",
    )


@cache
def _move_stamp_sql(capped: bool):
    stamp_table = _qn(Stamp._meta.db_table)
    history = Stamp.history.model
    count = _qn(Stamp._meta.get_field("count").column)
    cap = ""
    if capped:
        operations = ", ".join(f"'{name}'" for name in STAMP_CORRECTIONS)
        cap = (
            f" AND (SELECT COUNT(*) FROM {_qn(history._meta.db_table)} h "
            f"WHERE h.{_qn('id')} = %s AND h.{_qn('channel')} = %s "
            f"AND h.{_qn('operation')} IN ({operations}) "
            f"AND h.{_qn('history_date')} >= %s) < %s"
        )
    stamp_history, history_keys = _history_insert(Stamp, "stamp", "~")
    event_insert, event_keys = _stamp_event_insert()
    sequence = _qn(Customer._meta.get_field("event_sequence").column)
    sql = (
        f"WITH stamp AS (UPDATE {stamp_table} SET {count} = {count} + CAST(%s AS integer) "
        f"WHERE {_qn('id')} = %s{cap} RETURNING *), "
        f"customer AS (UPDATE {_qn(Customer._meta.db_table)} SET {sequence} = {sequence} + 1 "
        f"WHERE {_qn('id')} = (SELECT {_qn('customer_id')} FROM stamp) "
        f"RETURNING {_qn('id')}, {sequence}), "
        f"stamp_history AS ({stamp_history}), "
        f"event AS ({event_insert}) "
        f"SELECT {', '.join('stamp.' + _qn(f.column) for f in Stamp._meta.concrete_fields)}, "
        f"customer.{sequence} FROM stamp, customer"
    )
    return sql, history_keys, event_keys


def move_stamp(*, stamp: Stamp, delta: int, daily_cap=None, since=None) -> Stamp | None:
    """Add `delta` (+1, -1) to the count of `stamp`, which this transaction has locked
    (`lock_stamp`), with its history row, the customer's event count and the event. With
    `daily_cap`, only while fewer than that many corrections of this channel are recorded on
    the stamp `since` (the start of today); None when the cap refused it (nothing written).
    Call inside `audited()`; the count's CHECKs still bound it (0 to max_stamps)."""
    sql, history_keys, event_keys = _move_stamp_sql(daily_cap is not None)
    attribution = _attribution()
    params: list = [delta, stamp.pk]
    if daily_cap is not None:
        params += [stamp.pk, attribution["channel"], since, daily_cap]
    params += [attribution[key] for key in history_keys]
    event = {
        **events.attribution(),
        "event_id": events.new_event_id(),
        "created": attribution["history_date"],
        "count_before": stamp.count,
        "extra_data": json.dumps(events.approval_data()),
    }
    params += [event[key] for key in event_keys]
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return rows.instance(Stamp, row[:-1])
