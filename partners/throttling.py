"""Per-partner request throttling through the shared cache (Redis or the database cache)."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from partners.models import Partner


class PartnerRateThrottle(SimpleRateThrottle):
    """One budget per partner across its three APIs, at PARTNER_THROTTLE_RATE."""

    scope = "partner"

    def get_rate(self) -> str:
        return settings.PARTNER_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, Partner):
            return None
        return f"throttle:partner:{request.auth.pk}"
