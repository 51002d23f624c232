"""The event bus: every final event published to NATS JetStream, at least once, in feed order.

Its own cursor (`WorkerCursor("nats")`, locked with SKIP LOCKED so one worker publishes at a
time) moves only after JetStream acknowledged the batch; a crash in between republishes, and
the `Nats-Msg-Id` header (the event id) lets JetStream drop the duplicates within its window.
"""

from __future__ import annotations

import asyncio
import json
import logging

import nats
from django.conf import settings
from django.db import transaction
from nats.js.errors import NotFoundError

from ledger.webhooks import delivery, feed

logger = logging.getLogger("ledger.webhooks")
SUBJECT_PREFIX = "loyalty.events"


def subject(event) -> str:
    return f"{SUBJECT_PREFIX}.{event.merchant_id}.{event.type}"


class Publisher:
    """One NATS connection for the life of a worker (its own asyncio loop)."""

    def __init__(self, url: str, stream: str) -> None:
        self.url = url
        self.stream = stream
        self.loop = asyncio.new_event_loop()
        self.nc = None
        self.js = None

    async def _connect(self) -> None:
        if self.nc is not None and self.nc.is_connected:
            return
        self.nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=2)
        self.js = self.nc.jetstream()
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(name=self.stream, subjects=[f"{SUBJECT_PREFIX}.>"])

    async def _publish(self, events) -> None:
        await self._connect()
        for event in events:
            body = json.dumps(feed.event_body(event), separators=(",", ":")).encode()
            await self.js.publish(
                subject(event), body, stream=self.stream, headers={"Nats-Msg-Id": event.event_id}
            )

    def publish_due(self, batch: int = 500) -> int:
        """Publish the next final events; returns how many (0 when nothing is new)."""
        with transaction.atomic():
            cursor = delivery.cursor_for_update("nats")
            if cursor is None:
                return 0
            events = feed.final_events_after(cursor.txid, cursor.event, batch)
            if not events:
                return 0
            self.loop.run_until_complete(self._publish(events))
            cursor.txid, cursor.event = feed.position(events[-1])
            cursor.save(update_fields=["txid", "event", "updated"])
            return len(events)

    def close(self) -> None:
        if self.nc is not None:
            try:
                self.loop.run_until_complete(self.nc.close())
            except Exception:  # closing a broken connection: nothing left to do
                logger.debug("closing the NATS connection failed", exc_info=True)
        self.loop.close()


def publisher() -> Publisher | None:
    url = getattr(settings, "NATS_URL", "")
    return Publisher(url, getattr(settings, "NATS_STREAM", "LOYALTY_EVENTS")) if url else None
