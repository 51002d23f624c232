"""The event bus: every event on NATS JetStream, once per event id, on the local server."""

from __future__ import annotations

import asyncio
import socket

import nats
import pytest

from ledger.models.webhooks import WorkerCursor
from ledger.webhooks import bus, worker
from tests.webhooks.conftest import make_event


def _nats_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not _nats_up(), reason="needs NATS on 127.0.0.1:4222 (.ci/run starts it)"),
]


async def _published(stream: str, merchant_id: int, ids: set[str]) -> list:
    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        js = nc.jetstream()
        sub = await js.subscribe(
            f"loyalty.events.{merchant_id}.>", stream=stream, ordered_consumer=True
        )
        found = []
        while True:
            try:
                msg = await sub.next_msg(timeout=1)
            except nats.errors.TimeoutError:
                break
            if msg.headers and msg.headers.get("Nats-Msg-Id") in ids:
                found.append(msg)
        return found
    finally:
        await nc.close()


def test_every_event_is_published_once(webhook_settings, customer):
    webhook_settings.NATS_URL = "nats://127.0.0.1:4222"
    webhook_settings.NATS_STREAM = "LOYALTY_EVENTS"
    events = [make_event(customer.merchant, customer, "points.credited") for _ in range(5)]
    worker.run(burst=True)
    # Published again from the start (a crash before the cursor moved): JetStream drops the
    # duplicates by Nats-Msg-Id.
    WorkerCursor.objects.filter(name="nats").update(txid=0, event=0)
    worker.run(burst=True)
    ids = {e.event_id for e in events}
    msgs = asyncio.run(_published("LOYALTY_EVENTS", customer.merchant_id, ids))
    assert sorted(m.headers["Nats-Msg-Id"] for m in msgs) == sorted(ids)
    assert {m.subject for m in msgs} == {f"loyalty.events.{customer.merchant_id}.points.credited"}
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == [e.event_id for e in events]
    import json

    assert json.loads(msgs[0].data)["id"] == events[0].event_id


def test_subject():
    class E:
        merchant_id = 7
        type = "balance.canceled"

    assert bus.subject(E) == "loyalty.events.7.balance.canceled"
