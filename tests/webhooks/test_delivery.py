"""Delivery by the worker to a real receiver: signatures, retries, 410, redeliver, rotation,
per-customer order, inactive endpoints."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from ledger.models.webhooks import WebhookDelivery, WebhookEndpoint
from ledger.webhooks import delivery, services, worker
from tests import factories
from tests.webhooks.conftest import make_event

pytestmark = pytest.mark.django_db(transaction=True)


def burst():
    return worker.run(burst=True)


def test_a_delivery_verifies_with_standardwebhooks(receiver, endpoint_factory, customer):
    endpoint = endpoint_factory(receiver.url)
    event = make_event(customer.merchant, customer, "balance.credited", amount=5)
    burst()
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    payload = Webhook(endpoint.secret).verify(request["body"], request["headers"])
    assert payload["id"] == event.event_id == request["headers"]["webhook-id"]
    assert payload["type"] == "balance.credited"
    assert payload["customer"] == customer.pk and payload["customer_sequence"] == 1
    assert payload["data"] == {"amount": 5}
    assert payload["actor"] == {"type": "system", "name": "test"}
    assert request["headers"]["content-type"] == "application/json"
    d = WebhookDelivery.objects.get()
    assert (d.status, d.attempts, d.last_status_code) == ("succeeded", 1, 200)


def test_only_matching_types_and_merchants(receiver, endpoint_factory, customer):
    endpoint_factory(receiver.url, event_types=["points.credited"])
    make_event(customer.merchant, customer, "balance.credited")
    wanted = make_event(customer.merchant, customer, "points.credited")
    other = factories.CustomerFactory()
    make_event(other.merchant, other, "points.credited")
    burst()
    assert receiver.ids() == [wanted.event_id]


def test_retries_then_dead_letter(receiver, endpoint_factory, customer, settings):
    receiver.answer = lambda request: 500
    endpoint_factory(receiver.url)
    make_event(customer.merchant, customer)
    burst()  # schedule "0,0": three attempts, then failed
    d = WebhookDelivery.objects.get()
    assert (d.status, d.attempts, d.last_status_code) == ("failed", 3, 500)
    assert d.last_error == "HTTP 500 Internal Server Error"
    assert len(receiver.requests) == 3
    assert len(set(receiver.ids())) == 1  # the same webhook-id every time


def test_a_retry_waits_for_its_delay(receiver, endpoint_factory, customer, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = "60"
    receiver.answer = lambda request: 503
    endpoint_factory(receiver.url)
    make_event(customer.merchant, customer)
    burst()
    d = WebhookDelivery.objects.get()
    assert (d.status, d.attempts) == ("pending", 1)
    assert d.next_attempt_at > timezone.now() + dt.timedelta(seconds=50)
    burst()
    assert len(receiver.requests) == 1  # not due yet


def test_gone_fails_at_once_and_disables_the_endpoint(receiver, endpoint_factory, customer):
    receiver.answer = lambda request: 410
    endpoint = endpoint_factory(receiver.url)
    make_event(customer.merchant, customer)
    burst()
    d = WebhookDelivery.objects.get()
    assert (d.status, d.attempts, d.last_status_code) == ("failed", 1, 410)
    endpoint.refresh_from_db()
    assert endpoint.active is False
    # Events committed while it is inactive wait; re-enabled, they go out.
    receiver.answer = lambda request: 200
    later = make_event(customer.merchant, customer)
    burst()
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get(event=later).status == "pending"
    services.endpoint_update(endpoint, active=True)
    burst()
    assert receiver.ids()[-1] == later.event_id
    assert WebhookDelivery.objects.get(event=later).status == "succeeded"


def test_redeliver_sends_the_same_id_again(receiver, endpoint_factory, customer):
    endpoint = endpoint_factory(receiver.url)
    make_event(customer.merchant, customer)
    burst()
    d = WebhookDelivery.objects.get()
    with pytest.raises(services.DeliveryNotRedeliverable):
        services.delivery_redeliver(
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                event=make_event(customer.merchant),
                event_type="batch.completed",
                next_attempt_at=timezone.now() + dt.timedelta(days=1),
            )
        )
    services.delivery_redeliver(d)
    burst()
    first, second = receiver.requests[0], receiver.requests[1]
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    Webhook(endpoint.secret).verify(second["body"], second["headers"])
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("succeeded", 2)


def test_rotation_signs_with_both_secrets_for_a_day(receiver, endpoint_factory, customer):
    endpoint = endpoint_factory(receiver.url)
    old = endpoint.secret
    new = services.endpoint_rotate_secret(endpoint)
    assert new != old and new.startswith("whsec_")
    make_event(customer.merchant, customer)
    burst()
    request = receiver.requests[0]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(request["body"], request["headers"])
    Webhook(old).verify(request["body"], request["headers"])
    # A second rotation keeps only the current and the previous secret.
    newest = services.endpoint_rotate_secret(endpoint)
    make_event(customer.merchant, customer)
    burst()
    request = receiver.requests[1]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(newest).verify(request["body"], request["headers"])
    Webhook(new).verify(request["body"], request["headers"])
    with pytest.raises(Exception, match="signature"):
        Webhook(old).verify(request["body"], request["headers"])
    # After 24 hours, only the current secret signs.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires=timezone.now() - dt.timedelta(seconds=1)
    )
    make_event(customer.merchant, customer)
    burst()
    assert len(receiver.requests[2]["headers"]["webhook-signature"].split(" ")) == 1


def test_a_failing_delivery_holds_back_that_customers_later_events(
    receiver, endpoint_factory, customer, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = "0,0,60"
    stuck = make_event(customer.merchant, customer)
    receiver.answer = lambda request: 500 if request["event"]["id"] == stuck.event_id else 200
    endpoint_factory(receiver.url)
    second = make_event(customer.merchant, customer)
    third = make_event(customer.merchant, customer)
    other = factories.CustomerFactory(merchant=customer.merchant)
    free = make_event(customer.merchant, other)
    burst()
    # The stuck one was tried three times and waits 60 s; its customer's later events wait
    # with it, another customer's event is not held.
    assert receiver.ids() == [stuck.event_id, free.event_id, stuck.event_id, stuck.event_id] or (
        sorted(receiver.ids()) == sorted([stuck.event_id] * 3 + [free.event_id])
    )
    assert second.event_id not in receiver.ids() and third.event_id not in receiver.ids()
    # Its last retry fails: it is failed for good, and the others follow in sequence order.
    WebhookDelivery.objects.filter(event=stuck).update(next_attempt_at=timezone.now())
    burst()
    assert WebhookDelivery.objects.get(event=stuck).status == "failed"
    assert receiver.ids()[-2:] == [second.event_id, third.event_id]


def test_a_customers_events_wait_for_an_earlier_one_not_yet_dispatched(
    receiver, endpoint_factory, customer
):
    endpoint = endpoint_factory(receiver.url)
    first = make_event(customer.merchant, customer)
    second = make_event(customer.merchant, customer)
    # As when the later event's transaction id is the smaller one: only it was fanned out.
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=second,
        customer=customer,
        customer_sequence=second.customer_sequence,
        event_type=second.type,
        next_attempt_at=timezone.now(),
    )
    assert delivery.deliver_due() == 0
    burst()
    assert receiver.ids() == [first.event_id, second.event_id]
