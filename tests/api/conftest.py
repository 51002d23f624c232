"""Staff API fixtures: a small ledger, users of every role with real DRF tokens, a client
that sends the real `Authorization: Token ...` header."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts.models import Customer
from accounts.services import staff_create
from ledger import history, services
from ledger.models import BalanceUpdate, Event, PointTransaction, Stamp, StampCard
from loyalty.audit import Channel
from loyalty.models import IdempotencyKey
from tests import factories
from tests.helpers import fund

API = "/api/v1/"


class StaffClient:
    """A staff API caller; `token=None` is anonymous."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Token {token}"} if token else {}

    def call(self, method: str, path: str, body=None, *, raw=None, headers=None, **extra):
        url = path if path.startswith("/") else API + path
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        response = self.client.generic(
            method,
            url,
            data,
            content_type=extra.pop("content_type", "application/json"),
            headers={**self.headers, **(headers or {})},
            **extra,
        )
        if response.streaming and response["Content-Type"] == "application/json":
            # A streamed JSON array (history): read whole, so tests can use it like any other.
            streamed = response
            body = b"".join(streamed.streaming_content)
            response = HttpResponse(body, status=streamed.status_code)
            for name, value in streamed.items():
                response[name] = value
            response.json = lambda: json.loads(response.content)
            response.streamed = True
        return response

    def get(self, path: str, params: dict | None = None, **kwargs):
        from urllib.parse import urlencode

        if params:
            path = f"{path}{'&' if '?' in path else '?'}{urlencode(params)}"
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def patch(self, path: str, body=None, **kwargs):
        return self.call("PATCH", path, body, **kwargs)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Staff fixtures set passwords; the production hasher would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def superuser(db):
    user, _ = staff_create(username="admin-1", role="admin")
    return user


@pytest.fixture
def norole(db):
    """A staff user in no group: authenticated, permitted nothing."""
    return factories.UserFactory(username="norole-1")


@pytest.fixture
def users(support, auditor, superuser, norole, partner):
    return {
        "anonymous": None,
        "norole": norole,
        "partner": partner.user,
        "auditor": auditor,
        "support": support,
        "superuser": superuser,
    }


@pytest.fixture
def client_for(users):
    def make(role: str) -> StaffClient:
        user = users[role]
        return StaffClient(token_for(user) if user is not None else None)

    return make


@pytest.fixture
def api_support(support) -> StaffClient:
    return StaffClient(token_for(support))


@pytest.fixture
def api_auditor(auditor) -> StaffClient:
    return StaffClient(token_for(auditor))


@pytest.fixture
def world(merchant, store, customer, card, partner):
    """One of everything, with value in it: a credit, a deduction, a stamp at 2."""
    fund(customer, balance=100, points=100, store=store)
    stamp = factories.StampFactory(card=card, customer=customer, count=2)
    deduction = services.point_deduct(
        actor=partner.user,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=customer,
        points=10,
        redemption_id="redemption-1",
    )
    customer.refresh_from_db()
    return {
        "merchant": merchant,
        "store": store,
        "customer": customer,
        "card": card,
        "stamp": stamp,
        "partner": partner,
        "credit": BalanceUpdate.objects.get(customer=customer),
        "deduction": deduction,
        "credit_points": PointTransaction.objects.get(customer=customer, kind="credit"),
    }


def ledger_snapshot() -> dict:
    """Everything a staff API call could change."""
    return {
        "history": {label: m.history.count() for label, m in history.AUDITED_MODELS.items()},
        "customers": list(
            Customer.objects.order_by("id").values_list(
                "id", "balance", "points", "email", "member_id", "wallet_address", "name", "status"
            )
        ),
        "stamps": list(Stamp.objects.order_by("id").values_list("id", "count")),
        "balance_updates": list(
            BalanceUpdate.objects.order_by("id").values_list("id", "status", "canceled_at")
        ),
        "point_transactions": list(PointTransaction.objects.order_by("id").values_list("id")),
        "stamp_cards": list(StampCard.objects.order_by("id").values_list("id")),
        "idempotency_keys": IdempotencyKey.objects.count(),
        "events": Event.objects.count(),
    }
