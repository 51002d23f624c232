import datetime as dt

from django.conf import settings
from django.utils import timezone

from loyalty.commands import JsonCommand
from loyalty.idempotency import retention_hours
from loyalty.models import IdempotencyKey
from partners.models import SignedRequestId


class Command(JsonCommand):
    help = (
        "Delete what has expired: stored Idempotency-Key responses older than "
        "IDEMPOTENCY_KEY_RETENTION_HOURS, and Points API request ids older than twice "
        "POINTS_API_MAX_SKEW_SECONDS (they can no longer be replayed). Run it daily."
    )

    def run(self, **options):
        now = timezone.now()
        keys, _ = IdempotencyKey.objects.filter(
            created__lt=now - dt.timedelta(hours=retention_hours())
        ).delete()
        request_ids, _ = SignedRequestId.objects.filter(
            created__lt=now - dt.timedelta(seconds=2 * settings.POINTS_API_MAX_SKEW_SECONDS + 60)
        ).delete()
        payload = {"idempotency_keys": keys, "request_ids": request_ids}
        return payload, f"Deleted {keys} idempotency keys and {request_ids} request ids."
