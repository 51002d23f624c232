"""The only code that writes webhook endpoints and (re)queues deliveries."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import Merchant
from ledger.models.webhooks import WebhookDelivery, WebhookEndpoint
from ledger.webhooks import addresses, signing
from ledger.webhooks.feed import EVENT_TYPES
from loyalty.errors import DomainError, InvalidInput
from partners.credentials import decrypt_secret, encrypt_secret

ROTATION_OVERLAP = dt.timedelta(hours=24)


class DeliveryNotRedeliverable(DomainError):
    code = "delivery_pending"
    message = "The delivery is still pending: only a failed or succeeded one can be redelivered."


def validate_event_types(value) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise InvalidInput("event_types", 'a non-empty list of event types, or ["*"]')
    if "*" in value:
        if len(value) != 1:
            raise InvalidInput("event_types", '"*" stands alone: it means every type')
        return ["*"]
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput("event_types", f"unknown event type(s): {', '.join(unknown)}")
    return list(dict.fromkeys(value))


def _description(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 500:
        raise InvalidInput("description", "at most 500 characters")
    return value


@transaction.atomic
def endpoint_create(
    *, merchant_id: int, url: str, event_types, description: str | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (the only time the plain secret is returned)."""
    event_types = validate_event_types(event_types)
    url = addresses.validate_url(url)
    description = _description(description)
    if not Merchant.objects.filter(pk=merchant_id).exists():
        raise InvalidInput("merchant", "no merchant has this id")
    secret = signing.new_secret()
    endpoint = WebhookEndpoint.objects.create(
        merchant_id=merchant_id,
        url=url,
        event_types=event_types,
        description=description,
        secret_encrypted=encrypt_secret(secret),
    )
    return endpoint, secret


@transaction.atomic
def endpoint_update(endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Edit url, event_types, active or description (each validated as on create)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if "url" in changes:
        endpoint.url = addresses.validate_url(changes["url"])
    if "event_types" in changes:
        endpoint.event_types = validate_event_types(changes["event_types"])
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise InvalidInput("active", "true or false")
        endpoint.active = changes["active"]
    if "description" in changes:
        endpoint.description = _description(changes["description"])
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret; the current one signs too for 24 hours (never more than two)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = signing.new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires = timezone.now() + ROTATION_OVERLAP
    endpoint.secret_encrypted = encrypt_secret(secret)
    endpoint.save()
    return secret


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    while its 24 hours last."""
    found = [decrypt_secret(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires
    if endpoint.previous_secret_encrypted and expires is not None and now < expires:
        found.append(decrypt_secret(endpoint.previous_secret_encrypted))
    return found


@transaction.atomic
def delivery_redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue a failed or succeeded delivery again: a new attempt with the same webhook-id
    and a fresh retry schedule."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status == WebhookDelivery.Status.PENDING:
        raise DeliveryNotRedeliverable()
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.cycle_attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "cycle_attempts", "next_attempt_at"])
    return delivery
