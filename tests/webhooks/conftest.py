"""Webhook test fixtures: a real HTTP receiver on 127.0.0.1, events written as services do."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from ledger.models import Event
from ledger.models.webhooks import WebhookDelivery
from ledger.webhooks import services

_sequences: dict[int, itertools.count] = {}


def make_event(merchant, customer=None, type_="balance.credited", **data) -> Event:
    """An event as a service writes it (its own transaction: the worker sees it when final)."""
    sequence = None
    if customer is not None:
        last = Event.objects.filter(customer=customer).order_by("-customer_sequence").first()
        sequence = (last.customer_sequence if last else 0) + 1
    return Event.objects.create(
        event_id=f"evt_{uuid.uuid4().hex}",
        type=type_,
        created=timezone.now(),
        merchant=merchant,
        customer=customer,
        customer_sequence=sequence,
        actor_type="system",
        actor_name="test",
        channel="command",
        data=data or {"n": 1},
    )


def webhook_world(merchant, customer) -> dict:
    """An endpoint with one failed delivery, for tests that aim at existing objects."""
    endpoint, _secret = services.endpoint_create(
        merchant_id=merchant.pk, url="https://hooks.example.com/in", event_types=["*"]
    )
    event = make_event(merchant, customer)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        customer=customer,
        customer_sequence=event.customer_sequence,
        event_type=event.type,
        status=WebhookDelivery.Status.FAILED,
        attempts=1,
        next_attempt_at=timezone.now(),
    )
    return {"webhook_endpoint": endpoint, "webhook_delivery": delivery}


class Receiver:
    """Records every POST; `answer(request) -> status` decides the reply (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answer = lambda request: 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "event": json.loads(body),
                }
                with receiver.lock:
                    receiver.requests.append(request)
                status = receiver.answer(request)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[str]:
        return [r["event"]["id"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_RETRY_SCHEDULE = "0,0"
    settings.NATS_URL = ""
    return settings


@pytest.fixture
def endpoint_factory(webhook_settings, merchant):
    def make(url, event_types=("*",), merchant_id=None):
        endpoint, secret = services.endpoint_create(
            merchant_id=merchant_id or merchant.pk, url=url, event_types=list(event_types)
        )
        endpoint.secret = secret
        return endpoint

    return make
