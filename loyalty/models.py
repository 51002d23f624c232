"""Plumbing shared by every API: stored responses of Idempotency-Key requests."""

from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """The response of a successful request made with an Idempotency-Key, per caller.

    Written in the same transaction as the ledger change it answers, so either both exist
    or neither does. Kept at least IDEMPOTENCY_KEY_RETENTION_HOURS (purge_idempotency_keys).
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2000)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotencykey_unique_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.method} {self.path})"
