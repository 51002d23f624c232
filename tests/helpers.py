"""Helpers shared by the tests: funding through services, and real-thread concurrency."""

import os
import threading
from collections.abc import Callable

import pytest
from django.db import connections

from ledger import services
from loyalty.audit import Channel
from loyalty.db import is_postgresql

postgres_only = pytest.mark.skipif(
    not is_postgresql(), reason="needs PostgreSQL (make test sets DATABASE_URL)"
)


def fuzz_examples(default: int = 12) -> int:
    """Hypothesis examples per operation for the schemathesis tests (`FUZZ_EXAMPLES`;
    `make fuzz` runs them with many more)."""
    return max(1, int(os.environ.get("FUZZ_EXAMPLES") or default))


def fund(customer, *, balance: int = 0, points: int = 0, store=None):
    """Give a customer value through the services, so the ledger stays consistent."""
    if balance:
        services.balance_credit(
            actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=balance
        )
    if points:
        services.points_credit(
            actor=None, channel=Channel.COMMAND, customer=customer, points=points
        )
    customer.refresh_from_db()
    return customer


def run_concurrently(count: int, target: Callable[[int], object]) -> list[object]:
    """Run `target(i)` in `count` threads released together; returns results or exceptions.

    Each thread uses its own database connection and closes it, as a request would.
    """
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = target(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
