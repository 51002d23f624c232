"""The worker's reading of the event feed: what is final, in (txid, id) order, and its body.

The same visibility rule as `GET /api/v1/events/` (`ledger.feed`): on PostgreSQL only events
of transactions older than every transaction still in flight, so a cursor never passes an
event that commits later; on SQLite (one writer at a time) by id.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q

from ledger import events as ledger_events
from ledger import feed as ledger_feed
from ledger.models import Event

# Every type of the wire contract an endpoint may subscribe to: the ledger's, as the outbox
# emits them (`ledger.events.TYPES`, in the contract's order), and those that later features
# (approvals, correction batches) will emit.
EVENT_TYPES = tuple(
    dict.fromkeys(
        (
            *ledger_events.TYPES.values(),
            "approval.requested",
            "approval.approved",
            "approval.rejected",
            "approval.canceled",
            "approval.expired",
            "approval.failed",
            "batch.completed",
        )
    )
)


def final_events_after(txid: int, pk: int, limit: int) -> list[Event]:
    """Up to `limit` final events after the cursor (txid, pk), oldest first (the feed's own
    reader, so the worker and `GET /api/v1/events/` agree on what is final)."""
    events, _next = ledger_feed.page(after=ledger_feed.Cursor(txid, pk), limit=limit)
    return events


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


def event_body(event: Event) -> dict:
    """The event as the feed, webhook bodies and the event bus show it."""
    return ledger_events.as_json(event)
