"""The worker's two webhook duties: fan events out into deliveries, and deliver what is due.

Dispatch reads the feed after its cursor (row `WorkerCursor("webhooks")`, locked with SKIP
LOCKED so one worker at a time advances it) and inserts one delivery per matching endpoint in
the same transaction as the cursor's move: an event is fanned out exactly once.

Delivery claims due deliveries with `FOR UPDATE SKIP LOCKED`, so any number of workers share
the work, and keeps the claim's transaction open while it POSTs: a worker killed mid-delivery
leaves no trace (its transaction aborts, the rows unlock, still pending) and another attempt
sends the same `webhook-id`. A delivery is not claimed while an earlier-sequence delivery of
the same customer to the same endpoint is pending, nor while its endpoint is inactive.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ledger.models import Event
from ledger.models.webhooks import WebhookDelivery, WebhookEndpoint, WorkerCursor
from ledger.webhooks import feed, http, signing
from ledger.webhooks.services import signing_secrets

DEFAULT_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
Status = WebhookDelivery.Status


def retry_schedule() -> list[int]:
    raw = str(getattr(settings, "WEBHOOK_RETRY_SCHEDULE", "") or DEFAULT_SCHEDULE)
    return [int(part) for part in raw.split(",") if part.strip()]


def cursor_for_update(name: str) -> WorkerCursor | None:
    """The duty's cursor, locked for this transaction; None while another worker holds it."""
    locked = WorkerCursor.objects.select_for_update(skip_locked=True).filter(name=name).first()
    if locked is None and not WorkerCursor.objects.filter(name=name).exists():
        WorkerCursor.objects.get_or_create(name=name)  # the first round ever
        return WorkerCursor.objects.select_for_update(skip_locked=True).filter(name=name).first()
    return locked


def dispatch(batch: int = 500) -> int:
    """Fan the next final events out to their endpoints; returns how many events it read."""
    with transaction.atomic():
        cursor = cursor_for_update("webhooks")
        if cursor is None:
            return 0
        events = feed.final_events_after(cursor.txid, cursor.event, batch)
        if not events:
            return 0
        # Inactive endpoints get their deliveries too: they wait until it is active again.
        endpoints = list(
            WebhookEndpoint.objects.filter(merchant__in={e.merchant_id for e in events})
        )
        now = timezone.now()
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    endpoint=endpoint,
                    event=event,
                    customer_id=event.customer_id,
                    customer_sequence=event.customer_sequence,
                    event_type=event.type,
                    next_attempt_at=now,
                )
                for event in events
                for endpoint in endpoints
                if endpoint.merchant_id == event.merchant_id and endpoint.matches(event.type)
            ],
            ignore_conflicts=True,
        )
        cursor.txid, cursor.event = feed.position(events[-1])
        cursor.save(update_fields=["txid", "event", "updated"])
        return len(events)


def _claimable(now: dt.datetime):
    earlier_pending = WebhookDelivery.objects.filter(
        endpoint=OuterRef("endpoint"),
        customer=OuterRef("customer"),
        customer_sequence__lt=OuterRef("customer_sequence"),
        status=Status.PENDING,
    )
    due = (
        WebhookDelivery.objects.filter(
            status=Status.PENDING, next_attempt_at__lte=now, endpoint__active=True
        )
        .exclude(Exists(earlier_pending))
        .order_by("next_attempt_at", "id")
    )
    if connection.vendor == "postgresql":
        # Transaction ids and commit order differ: a customer's event n+1 can become final
        # (and be fanned out) before its event n. Wait until the dispatcher has read n too.
        cursor = WorkerCursor.objects.filter(name="webhooks").first()
        txid, pk = (cursor.txid, cursor.event) if cursor else (0, 0)
        undispatched_earlier = Event.objects.filter(
            customer=OuterRef("customer"),
            customer_sequence__lt=OuterRef("customer_sequence"),
            txid__gte=txid,
        ).filter(Q(txid__gt=txid) | Q(id__gt=pk))
        due = due.exclude(Exists(undispatched_earlier))
    return due


def _headers(delivery: WebhookDelivery, secrets_: list[str], body: bytes, now) -> dict:
    timestamp = int(now.timestamp())
    msg_id = delivery.event.event_id
    return {
        "content-type": "application/json",
        "user-agent": "loyalty-backoffice-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(secrets_, msg_id, timestamp, body),
    }


def _record(delivery: WebhookDelivery, answer: http.Answer, now, schedule: list[int]) -> bool:
    """Apply one attempt's answer; True when the endpoint answered 410 Gone."""
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = answer.status
    delivery.last_error = answer.error
    gone = answer.status == 410
    if answer.ok:
        delivery.status = Status.SUCCEEDED
    elif gone or delivery.cycle_attempts >= len(schedule):
        delivery.status = Status.FAILED
    else:
        delivery.next_attempt_at = now + dt.timedelta(seconds=schedule[delivery.cycle_attempts])
        delivery.cycle_attempts += 1
    return gone


def deliver_due(batch: int | None = None, pool: ThreadPoolExecutor | None = None) -> int:
    """Claim up to `batch` due deliveries, POST them (concurrently), record the answers;
    returns how many were attempted."""
    batch = batch or getattr(settings, "WEBHOOK_BATCH", 100)
    timeout = float(getattr(settings, "WEBHOOK_TIMEOUT", 15))
    schedule = retry_schedule()
    with transaction.atomic():
        now = timezone.now()
        claimed = list(
            _claimable(now)
            .select_related("event", "endpoint")
            .select_for_update(skip_locked=True, of=("self",))[:batch]
        )
        if not claimed:
            return 0
        secrets_by_endpoint: dict[int, list[str]] = {}
        requests = []
        for delivery in claimed:
            endpoint = delivery.endpoint
            if endpoint.pk not in secrets_by_endpoint:
                secrets_by_endpoint[endpoint.pk] = signing_secrets(endpoint, now)
            body = json.dumps(feed.event_body(delivery.event), separators=(",", ":")).encode()
            headers = _headers(delivery, secrets_by_endpoint[endpoint.pk], body, now)
            requests.append((endpoint.url, body, headers, timeout))
        if pool is not None and len(requests) > 1:
            answers = list(pool.map(lambda r: http.post(*r), requests))
        else:
            answers = [http.post(*r) for r in requests]
        finished = timezone.now()
        gone = set()
        for delivery, answer in zip(claimed, answers, strict=True):
            if _record(delivery, answer, finished, schedule):
                gone.add(delivery.endpoint_id)
        _save_attempts(claimed)
        if gone:
            # 410 Gone: the receiver says it no longer exists; stop until someone re-enables.
            WebhookEndpoint.objects.filter(pk__in=gone).update(active=False)
        return len(claimed)


def _save_attempts(claimed: list[WebhookDelivery]) -> None:
    """One UPDATE per delivery, sent together (psycopg pipelines executemany); Django's
    bulk_update builds a CASE per column that costs PostgreSQL far more to plan."""
    table = WebhookDelivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET status = %s, attempts = %s, cycle_attempts = %s, "  # noqa: S608 - the model's own table name
            "next_attempt_at = %s, last_attempt_at = %s, last_status_code = %s, "
            "last_error = %s WHERE id = %s",
            [
                (
                    d.status,
                    d.attempts,
                    d.cycle_attempts,
                    d.next_attempt_at,
                    d.last_attempt_at,
                    d.last_status_code,
                    d.last_error,
                    d.pk,
                )
                for d in claimed
            ],
        )
