"""The worker as a process: SIGKILLed during deliveries, restarted, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from ledger.models.webhooks import WebhookDelivery, WorkerCursor
from tests.webhooks.conftest import make_event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: SKIP LOCKED"),
]
ROOT = Path(__file__).resolve().parents[2]


def worker(*args: str, env: dict | None = None) -> subprocess.Popen:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    extra = env
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WEBHOOK_ALLOW_PRIVATE_URLS": "1",
        "WEBHOOK_RETRY_SCHEDULE": "0,0,0,0,0",
        "WEBHOOK_BATCH": "10",
        "WORKER_POLL_SECONDS": "0.1",
        "NATS_URL": "",
        **(extra or {}),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "-v0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_worker_killed_mid_delivery_loses_nothing(receiver, endpoint_factory, merchant):
    from tests import factories

    def slow(request):
        time.sleep(0.03)
        return 200

    receiver.answer = slow
    endpoint_factory(receiver.url)
    customers = [factories.CustomerFactory(merchant=merchant) for _ in range(8)]
    events = [make_event(merchant, customers[i % 8]) for i in range(80)]

    first = worker()
    wait_for(lambda: len(receiver.requests) >= 15)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert WebhookDelivery.objects.filter(status="pending").exists()  # killed mid-way

    second = worker("--burst")
    assert second.wait(120) == 0, second.stderr.read().decode()
    received = set(receiver.ids())
    assert received == {e.event_id for e in events}  # every event at least once
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    # Each customer's first arrivals are in sequence order, across the kill.
    by_id = {e.event_id: e for e in events}
    seen: dict[int, int] = {}
    for event_id in receiver.ids():
        event = by_id[event_id]
        if event.customer_sequence > seen.get(event.customer_id, 0):
            assert event.customer_sequence == seen.get(event.customer_id, 0) + 1
            seen[event.customer_id] = event.customer_sequence


def test_sigterm_stops_the_loop(webhook_settings):
    process = worker()
    # In its loop (the dispatcher made its cursor), not still starting Django.
    wait_for(lambda: WorkerCursor.objects.filter(name="webhooks").exists())
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
