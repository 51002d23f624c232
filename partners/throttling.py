"""Per-partner request throttling through the shared cache (Redis when REDIS_URL is set).

A fixed-window counter: one atomic increment per request, whatever the rate. DRF's
SimpleRateThrottle keeps every request's timestamp in one cache value, which at the default
6000/min means reading and writing thousands of floats on every call. The price of the
counter is that a client may burst up to twice the rate across a window boundary.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from partners.identity import PartnerIdentity

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate strings: "6000/min", "10/s", "100/hour", "1000/day"."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[0]]


class PartnerRateThrottle(BaseThrottle):
    """One budget per partner across its three APIs, at PARTNER_THROTTLE_RATE."""

    def allow_request(self, request, view) -> bool:
        identity = request.auth
        if not isinstance(identity, PartnerIdentity):
            return True
        limit, period = parse_rate(settings.PARTNER_THROTTLE_RATE)
        now = time.time()
        key = f"throttle:partner:{identity.partner.pk}:{period}:{int(now // period)}"
        try:
            count = cache.incr(key)  # one round trip, except for a window's first request
        except ValueError:
            count = 1 if cache.add(key, 1, timeout=period + 1) else cache.incr(key)
        self.retry_after = period - (now % period)
        return count <= limit

    def wait(self) -> float:
        return self.retry_after
