"""The partner throttle's leased blocks (partners.throttling): exact with one process, never
over the limit across processes and threads, and one cache round trip per block."""

from __future__ import annotations

import random
import threading

import pytest
from django.core.cache import cache

from partners import throttling
from partners.throttling import LeaseBook, block_size

NOW = 1_000_000.0  # the start of a 60-second window


@pytest.fixture(autouse=True)
def _locmem(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()


def admitted(book: LeaseBook, requests: int, limit: int, partner: int = 1) -> int:
    return sum(book.take(partner, limit, 60, NOW) for _ in range(requests))


@pytest.mark.parametrize("limit", [1, 3, 99, 100, 6000, 12345])
def test_one_process_admits_exactly_the_limit(limit):
    assert admitted(LeaseBook(), limit + 500, limit) == limit


def test_blocks_are_bounded():
    assert [block_size(n) for n in (0, 3, 199, 200, 6000, 10**8)] == [1, 1, 1, 2, 50, 50]


def test_one_round_trip_per_block(monkeypatch):
    calls = []
    real = throttling._increment
    monkeypatch.setattr(throttling, "_increment", lambda *a: (calls.append(a), real(*a))[1])
    book = LeaseBook()
    assert admitted(book, 1000, 6000) == 1000
    assert len(calls) == 1000 // 50
    # Past the limit the process stops asking until the window ends.
    assert admitted(book, 5000 + 300, 6000) == 5000
    asked = len(calls)
    assert admitted(book, 100, 6000) == 0
    assert len(calls) == asked
    # A new window is a new budget.
    assert book.take(1, 6000, 60, NOW + 60)


def test_a_new_window_or_partner_has_its_own_budget():
    book = LeaseBook()
    assert admitted(book, 10, 3) == 3
    assert admitted(book, 10, 3, partner=2) == 3
    assert sum(book.take(1, 3, 60, NOW + 60) for _ in range(10)) == 3


@pytest.mark.parametrize("limit", [100, 6000, 7777])
def test_several_processes_never_exceed_the_limit(limit):
    """Four lease books share the cache, as four workers share Redis; requests land on them
    at random. No more than the limit passes; the shortfall is at most 3 blocks (README)."""
    rng = random.Random(limit)
    books = [LeaseBook() for _ in range(4)]
    passed = sum(rng.choice(books).take(1, limit, 60, NOW) for _ in range(limit * 2))
    assert limit - 3 * block_size(limit) <= passed <= limit
    # Each process uses up what it holds: then the whole budget has passed.
    for book in books:
        passed += admitted(book, limit, limit)
    assert passed == limit


def test_threads_of_one_process_admit_exactly_the_limit():
    book, limit, results = LeaseBook(), 6000, []
    barrier = threading.Barrier(8)

    def hammer():
        barrier.wait()
        results.append(admitted(book, 1000, limit))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == limit
