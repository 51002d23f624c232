"""Per-partner request throttling through the shared cache (Redis when REDIS_URL is set).

A fixed-window counter per partner, leased in blocks. The counter numbers the window's
requests (its "slots", 1 to the limit); a worker process takes a block of slots with one
atomic increment (INCRBY) and hands them to its requests under a lock, asking again when they
are used up. At the default 6000/min a block is 50 slots: one Redis round trip per 50
requests of a process instead of one per request. A block is `min(MAX_BLOCK, limit // 100)`,
at least 1, so a small limit (3/min) still costs one increment per request, as before.

Honesty of the limit:

* Never more than the limit in a window: a request is let through only with a slot of its
  own numbered within the limit, whichever process leased it.
* Possibly fewer, by what other processes leased but have not used: a request may be refused
  (429) by a process whose block is used up and whose next lease is past the limit while the
  other P - 1 processes still hold up to MAX_BLOCK unused slots each, i.e. at most
  (P - 1) x block of the window's budget (4 workers at 6000/min: 150, 2.5%) goes unused or
  is served only by the processes holding it. A process that stops keeps its block unused.
* As before, a fixed window lets a client burst up to twice the limit across a boundary.

Once the window's counter is past the limit, the process refuses its partner's requests until
the window ends without asking again (the counter never goes down within a window).
DRF's SimpleRateThrottle keeps every request's timestamp in one cache value, which at 6000/min
means reading and writing thousands of floats on every call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from partners.identity import PartnerIdentity

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_BLOCK = 50


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate strings: "6000/min", "10/s", "100/hour", "1000/day"."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[0]]


def block_size(limit: int) -> int:
    return max(1, min(MAX_BLOCK, limit // 100))


@dataclass
class _Lease:
    window: int
    next: int  # the next slot to hand out
    last: int  # the block's last usable slot (within the limit); next > last: used up


class LeaseBook:
    """One process's leases (module-level `leases` below); tests make several to stand for
    several processes sharing the cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[tuple[int, int, int], _Lease] = {}

    def take(self, partner_id: int, limit: int, period: int, now: float) -> bool:
        """A slot of the current window for one request, or False: the limit is reached."""
        window = int(now // period)
        name = (partner_id, limit, period)
        with self._lock:
            lease = self._leases.get(name)
            if lease is None or lease.window != window:
                lease = self._leases[name] = _Lease(window, 1, 0)
            if lease.next > lease.last:
                if lease.last >= limit:  # the window's budget is spent: no more asking
                    return False
                block = block_size(limit)
                key = f"throttle:partner:{partner_id}:{period}:{window}"
                total = _increment(key, block, period)
                first = total - block + 1
                if first > limit:  # spent by other processes: used up, and at the limit
                    lease.next, lease.last = limit + 1, limit
                    return False
                lease.next, lease.last = first, min(total, limit)
            lease.next += 1
            return True


def _increment(key: str, block: int, period: int) -> int:
    """The counter after adding `block`: one round trip, except for a window's first lease."""
    try:
        return cache.incr(key, block)
    except ValueError:
        if cache.add(key, block, timeout=period + 1):
            return block
        return cache.incr(key, block)


leases = LeaseBook()


class PartnerRateThrottle(BaseThrottle):
    """One budget per partner across its three APIs, at PARTNER_THROTTLE_RATE."""

    def allow_request(self, request, view) -> bool:
        identity = request.auth
        if not isinstance(identity, PartnerIdentity):
            return True
        limit, period = parse_rate(settings.PARTNER_THROTTLE_RATE)
        now = time.time()
        self.retry_after = period - (now % period)
        return leases.take(identity.partner.pk, limit, period, now)

    def wait(self) -> float:
        return self.retry_after
