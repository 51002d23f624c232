"""A per-user request budget for the staff API (STAFF_API_THROTTLE_RATE, default 1200/min)."""

from django.conf import settings
from rest_framework.throttling import UserRateThrottle

DEFAULT_RATE = "1200/min"


class StaffRateThrottle(UserRateThrottle):
    scope = "staff"

    def get_rate(self) -> str | None:
        # Read per request so a deployment (or a test) can change it; None disables it.
        return getattr(settings, "STAFF_API_THROTTLE_RATE", DEFAULT_RATE)
