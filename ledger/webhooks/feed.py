"""The worker's reading of the event feed: what is final, in (txid, id) order, and its body.

The same visibility rule as `GET /api/v1/events/`: on PostgreSQL only events of transactions
older than every transaction still in flight (`pg_snapshot_xmin`), so a cursor never passes an
event that commits later; on SQLite (one writer at a time) by id.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from ledger.models import Event

HORIZON = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

EVENT_TYPES = (
    "stamp.created",
    "stamp.added",
    "stamp.removed",
    "stamp.updated",
    "stamp.deleted",
    "balance.credited",
    "balance.debited",
    "balance.adjusted",
    "balance.canceled",
    "points.credited",
    "points.deducted",
    "points.adjusted",
    "points.reverted",
    "points.confirmed",
    "approval.requested",
    "approval.approved",
    "approval.rejected",
    "approval.canceled",
    "approval.expired",
    "approval.failed",
    "batch.completed",
)


def final_events_after(txid: int, pk: int, limit: int) -> list[Event]:
    """Up to `limit` final events after the cursor (txid, pk), oldest first."""
    events = Event.objects.select_related(None)
    if connection.vendor == "postgresql":
        events = events.filter(Q(txid__gt=txid) | Q(txid=txid, id__gt=pk)).filter(
            txid__lt=RawSQL(HORIZON, [])  # noqa: S611 - a constant expression, no input
        )
        return list(events.order_by("txid", "id")[:limit])
    return list(events.filter(id__gt=pk).order_by("id")[:limit])


def pending_until(txid: int, pk: int, last_pk: int) -> bool:
    """Whether an event with id up to `last_pk` lies after the cursor but is not final yet
    (its transaction, or an older one still in flight, has not finished)."""
    events = Event.objects.filter(id__lte=last_pk)
    if connection.vendor == "postgresql":
        events = events.filter(Q(txid__gt=txid) | Q(txid=txid, id__gt=pk))
    else:
        events = events.filter(id__gt=pk)
    return events.exists()


def last_pk() -> int:
    last = Event.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def position(event: Event) -> tuple[int, int]:
    return (event.txid or 0, event.pk)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def event_body(event: Event) -> dict:
    """The event as the feed, webhook bodies and the event bus show it."""
    return {
        "id": event.event_id,
        "type": event.type,
        "created": _iso(event.created),
        "merchant": event.merchant_id,
        "customer": event.customer_id,
        "customer_sequence": event.customer_sequence,
        "actor": {"type": event.actor_type, "name": event.actor_name},
        "channel": event.channel,
        "reason": event.reason,
        "request_id": event.request_id,
        "data": event.data,
    }
