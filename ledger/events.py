"""The outbox writer: one `Event` per committed change of value, in the change's transaction.

Services call `record(...)` (or, on the one-statement path, `ledger.statements` inserts the
same row inside its statement) while their `audited()` block is open: the event's type comes
from the block's operation, its actor, channel and reason from the block, its request id
from the request. `customer_sequence` is the customer's `event_sequence` after the increment
that the move made under the customer's row lock, so it is gap-free in commit order.

The `data` shapes are built here, once; `entry_sql` builds the same objects in SQL for the
one-statement moves (tests/ledger/test_statements.py compares both paths).
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone
from uuid6 import uuid7

from accounts.models import Customer
from ledger.models import BalanceUpdate, Event, PointTransaction, Stamp
from loyalty.audit import Channel, UnattributedChange, current
from loyalty.request_id import current_request_id

# The audited operation of each service -> the event type it emits.
TYPES = {
    "stamp_create": "stamp.created",
    "stamp_add": "stamp.added",
    "stamp_remove": "stamp.removed",
    "stamp_update": "stamp.updated",
    "stamp_set_count": "stamp.updated",
    "stamp_deactivate": "stamp.deleted",
    "balance_credit": "balance.credited",
    "balance_debit": "balance.debited",
    "balance_adjust": "balance.adjusted",
    "balance_update_cancel": "balance.canceled",
    "points_credit": "points.credited",
    "point_deduct": "points.deducted",
    "points_adjust": "points.adjusted",
    "point_deduction_revert": "points.reverted",
    "point_deduction_confirm": "points.confirmed",
    # ledger.approvals: a request's steps (no customer, no sequence)
    "approval_request": "approval.requested",
    "approval_approve": "approval.approved",
    "approval_reject": "approval.rejected",
    "approval_cancel": "approval.canceled",
    "approval_expire": "approval.expired",
    "approval_fail": "approval.failed",
    # ledger.batches: a batch the worker finished (no customer, no sequence)
    "batch_complete": "batch.completed",
}
EVENT_TYPES = sorted(set(TYPES.values()))

PARTNER_CHANNELS = frozenset({Channel.STAMP_API, Channel.BALANCE_API, Channel.POINTS_API})

# The fields of each ledger row in its event, and the data key and customer total beside it.
STAMP_FIELDS = ("id", "card", "count", "max_stamps", "active", "redeemed")
ENTRIES = {
    BalanceUpdate: (
        "balance_update",
        ("id", "effect", "amount", "status", "balance_after"),
        "balance",
    ),
    PointTransaction: (
        "point_transaction",
        (
            "id",
            "kind",
            "points",
            "points_after",
            "redemption_id",
            "partner_transaction_id",
            "reverts",
        ),
        "points",
    ),
}


def _attname(model, name: str) -> str:
    return model._meta.get_field(name).attname


def _object(instance, fields) -> dict:
    model = type(instance)
    return {name: getattr(instance, _attname(model, name)) for name in fields}


def stamp_data(stamp: Stamp, count_before: int) -> dict:
    return {"stamp": _object(stamp, STAMP_FIELDS), "count_before": count_before}


def entry_object(entry) -> dict:
    """A balance update or point transaction as events show it."""
    _key, fields, _total = ENTRIES[type(entry)]
    return _object(entry, fields)


def entry_data(entry, total: int, *, original=None) -> dict:
    key, _fields, total_key = ENTRIES[type(entry)]
    data = {key: entry_object(entry), total_key: total}
    if original is not None:
        data["original"] = original
    return data


def confirmed_data(txn: PointTransaction) -> dict:
    return {"point_transaction": entry_object(txn), "status": txn.confirmation_status}


def entry_sql(model, entry: str, customer: str) -> str:
    """`entry_data` in SQL over the CTE names `entry` and `customer` (jsonb)."""
    key, fields, total = ENTRIES[model]
    qn = connection.ops.quote_name
    pairs = ", ".join(
        f"'{name}', {entry}.{qn(model._meta.get_field(name).column)}" for name in fields
    )
    column = qn(Customer._meta.get_field(total).column)
    row = f"jsonb_build_object({pairs})"
    return f"jsonb_build_object('{key}', {row}, '{total}', {customer}.{column})"


def new_event_id() -> str:
    return f"evt_{uuid7().hex}"


def attribution() -> dict:
    """The columns of an event that come from the open `audited()` block and the request."""
    context = current()
    if context is None:
        raise UnattributedChange("events are recorded only inside loyalty.audit.audited()")
    actor = context.actor
    if getattr(actor, "pk", None) is None:
        actor_type, actor_name = Event.ActorType.SYSTEM, "system"
    elif context.channel in PARTNER_CHANNELS:
        # The partner's service user; authentication caches its partner on it.
        actor_type, actor_name = Event.ActorType.PARTNER, actor.partner.name
    else:
        actor_type, actor_name = Event.ActorType.STAFF, actor.get_username()
    return {
        "type": TYPES[context.operation],
        "actor_type": actor_type,
        "actor_name": actor_name,
        "channel": context.channel,
        "reason": context.reason or None,
        "request_id": current_request_id() or None,
    }


def approval_data() -> dict:
    """`{"approval": {id, approved_by, reason}}` when the open `audited()` block applies an
    approved request (`loyalty.audit.approving`), else `{}`: merged into the event's data, so
    the event names the approver beside its actor (the requester)."""
    context = current()
    approval = context.approval if context is not None else None
    if approval is None:
        return {}
    return {
        "approval": {
            "id": approval.approval_id,
            "approved_by": approval.approver.get_username(),
            "reason": approval.reason,
        }
    }


def next_sequence(customer_id: int) -> int:
    """Count one more event for a customer whose row this transaction has locked (a stamp
    move, a confirmation: they change no customer column, so this is their update)."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET event_sequence = event_sequence + 1 "  # noqa: S608
            "WHERE id = %s RETURNING event_sequence",
            [customer_id],
        )
        return cursor.fetchone()[0]


def record(*, merchant_id: int, customer_id: int | None, sequence: int | None, data: dict):
    """Write the event of the operation of the open `audited()` block."""
    return Event.objects.create(
        event_id=new_event_id(),
        created=timezone.now(),
        merchant_id=merchant_id,
        customer_id=customer_id,
        customer_sequence=sequence,
        data=data | approval_data(),
        **attribution(),
    )


def iso_utc(moment: dt.datetime | None) -> str | None:
    """A moment as every wire shape writes it: ISO 8601 in UTC with "Z" (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def as_json(event: Event) -> dict:
    """The event as the feed, webhook bodies and the event bus carry it."""
    return {
        "id": event.event_id,
        "type": event.type,
        "created": iso_utc(event.created),
        "merchant": event.merchant_id,
        "customer": event.customer_id,
        "customer_sequence": event.customer_sequence,
        "actor": {"type": event.actor_type, "name": event.actor_name},
        "channel": event.channel,
        "reason": event.reason,
        "request_id": event.request_id,
        "data": event.data,
    }
