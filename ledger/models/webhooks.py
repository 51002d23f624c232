"""Webhook endpoints, their deliveries, and the worker's cursors over the event feed.

Deliveries are created by the worker's dispatcher from the feed, never by the services that
write events (their transactions stay free of endpoint look-ups), and claimed by any number
of worker processes with `SELECT ... FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from accounts.models import Customer, Merchant


class WebhookEndpoint(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    url = models.CharField(max_length=2000)
    # A list of event types, or ["*"] for every type.
    event_types = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True, default="")
    # Fernet tokens (FIELD_ENCRYPTION_KEY); the plain secret exists only in the answer that
    # creates or rotates it.
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_expires = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        permissions = [("manage_webhookendpoint", "Can manage webhook endpoints")]
        constraints = [
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"),
                name="webhookendpoint_http_url",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.url} (#{self.pk})"

    def matches(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey("ledger.Event", on_delete=models.PROTECT, related_name="+")
    # Copied from the event: the claim keeps each customer's deliveries to an endpoint in
    # sequence order without joining the events.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip
    customer_sequence = models.BigIntegerField(null=True, blank=True)
    event_type = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Failed attempts since the delivery was (re)queued: the index into the retry schedule.
    cycle_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhookdelivery_once"),
        ]
        indexes = [
            # The claim: pending deliveries by due time.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status="pending"),
                name="webhookdelivery_due",
            ),
            # The ordering check: an earlier pending delivery of the same customer.
            models.Index(
                fields=["endpoint", "customer", "customer_sequence"],
                condition=Q(status="pending"),
                name="webhookdelivery_order",
            ),
            models.Index(fields=["status", "id"], name="webhookdelivery_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to endpoint #{self.endpoint_id} ({self.status})"


class WorkerCursor(models.Model):
    """How far a worker duty ("webhooks", "nats") has read the feed: its (txid, id)."""

    name = models.CharField(max_length=20, primary_key=True)
    txid = models.BigIntegerField(default=0)
    event = models.BigIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at ({self.txid}, {self.event})"
