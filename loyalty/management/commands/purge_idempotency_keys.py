import datetime as dt

from django.utils import timezone

from loyalty.commands import JsonCommand
from loyalty.idempotency import retention_hours
from loyalty.models import IdempotencyKey


class Command(JsonCommand):
    help = "Delete stored Idempotency-Key responses older than the retention (default 24 h)."

    def run(self, **options):
        cutoff = timezone.now() - dt.timedelta(hours=retention_hours())
        deleted, _ = IdempotencyKey.objects.filter(created__lt=cutoff).delete()
        return {"deleted": deleted}, f"Deleted {deleted} idempotency keys older than {cutoff}."
