"""The event feed: pages of committed events, oldest first, that never skip one.

The outbox problem: an event's id is taken at INSERT, but the row becomes visible at COMMIT,
so a transaction that started first can commit an event with a smaller id after a reader has
moved its cursor past it. Here events are ordered by (txid, id), txid being the id of the
writing transaction, and a page holds only events whose transaction is older than the oldest
one still in flight (`horizon()`: `pg_snapshot_xmin(pg_current_snapshot())`, but not held
back by transactions of other databases on the same server): every such transaction has
ended, so nothing can later commit an event that sorts before the cursor. A transaction of
this database still running holds back the feed (not the writers) until it ends; keep
transactions short (the services' are milliseconds).

On SQLite (the demo) writers take the database's single write lock until they commit, so
ids are handed out in commit order and the feed pages by id alone (txid is null there).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from ledger.models import Event

_CURSOR = re.compile(r"([0-9]{1,19})\.([0-9]{1,19})")
_MAX = 2**63 - 1


# The oldest transaction still in flight that could write an event here: the snapshot's
# in-progress ids (cluster-wide), less those that a backend connected to another database
# holds (a session never changes database), else the first id not yet assigned. The
# activity view is read after the snapshot (or cached earlier in a transaction): an id it
# misses stays in the set, which only holds the feed back, never lets it skip. xid8 is
# compared as bigint, like the txid column (text is the one cast it has).
HORIZON_SQL = """
WITH snap AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
    SELECT backend_xid FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname <> current_database()
)
SELECT least(
    (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap),
    (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
     WHERE xid(x) NOT IN (SELECT backend_xid FROM elsewhere))
)
"""


def horizon() -> int:
    """Every transaction of this database with an id below this one has ended. Taken in its
    own statement, before the page's, so the page's snapshot sees all of them."""
    with connection.cursor() as cursor:
        cursor.execute(HORIZON_SQL)
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class Cursor:
    """The position after an event: its (txid, id). Opaque to clients."""

    txid: int
    id: int

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.txid}.{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor, or None when `text` is not one this feed handed out."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return None
        match = _CURSOR.fullmatch(raw)
        if match is None:
            return None
        txid, id_ = int(match[1]), int(match[2])
        if txid > _MAX or id_ > _MAX:
            return None
        return cls(txid, id_)


START = Cursor(0, 0)


def page(
    *,
    after: Cursor | None,
    limit: int,
    merchant: int | None = None,
    type: str | None = None,
    customer: int | None = None,
) -> tuple[list[Event], Cursor]:
    """Up to `limit` visible events after `after`, and the cursor to continue from (the
    same cursor when there is nothing new yet)."""
    after = after or START
    events = Event.objects.all()
    if merchant is not None:
        events = events.filter(merchant_id=merchant)
    if type is not None:
        events = events.filter(type=type)
    if customer is not None:
        events = events.filter(customer_id=customer)
    if connection.vendor == "postgresql":
        events = events.filter(txid__lt=horizon()).filter(
            Q(txid__gt=after.txid) | Q(txid=after.txid, id__gt=after.id)
        )
        events = events.order_by("txid", "id")
    else:
        events = events.filter(id__gt=after.id).order_by("id")
    results = list(events[:limit])
    if not results:
        return results, after
    last = results[-1]
    return results, Cursor(last.txid or 0, last.id)
