"""Events through the three partner APIs: the partner as actor, the API's channel, the
request id; an Idempotency-Key replay and a refusal write none."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ledger.models import BalanceUpdate, Event, PointTransaction
from tests import factories
from tests.helpers import fund

pytestmark = pytest.mark.django_db

PARTNER = {"type": "partner", "name": "Partner A"}


def events_of(customer) -> list[Event]:
    return list(Event.objects.filter(customer=customer).order_by("customer_sequence"))


def actor(event: Event) -> dict:
    return {"type": event.actor_type, "name": event.actor_name}


def test_stamp_api_create_add_remove_update_delete(stamp_api, card, customer):
    today = timezone.localdate()
    created = stamp_api.call(
        "POST",
        "/api/stamp/v1/create",
        {
            "cardIdx": card.pk,
            "customer": customer.member_id,
            "strtYmd": today.isoformat(),
            "endYmd": (today + dt.timedelta(days=30)).isoformat(),
        },
        headers={"X-Request-ID": "req-create"},
    )
    stamp_id = created.json()["result"]
    assert stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp_id}).status_code == 200
    stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp_id})
    stamp_api.call("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp_id, "reason": "double scan"})
    stamp_api.call("PUT", "/api/stamp/v1/update", {"stampIdx": stamp_id, "stamps": 7})
    stamp_api.call("DELETE", "/api/stamp/v1/delete", params={"stampIdx": stamp_id})
    events = events_of(customer)
    assert [(e.type, e.data["count_before"], e.data["stamp"]["count"]) for e in events] == [
        ("stamp.created", 0, 0),
        ("stamp.added", 0, 1),
        ("stamp.added", 1, 2),
        ("stamp.removed", 2, 1),
        ("stamp.updated", 1, 7),
        ("stamp.deleted", 7, 7),
    ]
    assert [e.customer_sequence for e in events] == [1, 2, 3, 4, 5, 6]
    assert all(actor(e) == PARTNER and e.channel == "stamp-api" for e in events)
    assert events[0].request_id == "req-create"
    assert events[3].reason == "double scan"
    assert events[5].data["stamp"]["active"] is False


def test_stamp_api_refusal_and_replay_write_nothing(stamp_api, card, customer):
    stamp = factories.StampFactory(card=card, customer=customer, count=0)
    refused = stamp_api.call("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp.pk})
    assert refused.json()["code"] != 0
    key = {"Idempotency-Key": "add-1"}
    first = stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk}, headers=key)
    again = stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk}, headers=key)
    assert first.json() == again.json()
    assert [e.type for e in events_of(customer)] == ["stamp.added"]


@pytest.fixture
def move(customer, merchant, store):
    def build(amount, **changes):
        return {
            "user": customer.email,
            "amount": amount,
            "merchant": merchant.pk,
            "store": store.pk,
            **changes,
        }

    return build


def test_balance_api_credit_debit_cancel_and_replay(balance_api, move, customer):
    key = {"Idempotency-Key": "credit-1"}
    first = balance_api.call("POST", "/api/balances/credit", move(100), headers=key)
    assert first.status_code == 200
    again = balance_api.call("POST", "/api/balances/credit", move(100), headers=key)
    assert again.json() == first.json()
    debit = balance_api.call("POST", "/api/balances/debit", move(30)).json()["balance_update"]
    refused = balance_api.call("POST", "/api/balances/debit", move(1000))
    assert refused.status_code != 200
    canceled = balance_api.call("POST", "/api/balances/cancel", {"id": debit["id"]})
    assert canceled.status_code == 200
    events = events_of(customer)
    assert [(e.type, e.data["balance"]) for e in events] == [
        ("balance.credited", 100),
        ("balance.debited", 70),
        ("balance.canceled", 100),
    ]
    assert all(actor(e) == PARTNER and e.channel == "balance-api" for e in events)
    update = BalanceUpdate.objects.get(pk=debit["id"])
    assert events[2].data["balance_update"] == {
        "id": update.pk,
        "effect": "debit",
        "amount": 30,
        "status": "Canceled",
        "balance_after": 70,
    }
    assert events[2].data["original"]["status"] == "Success"


def test_points_api_deduct_revert_confirm_and_replay(points_api, customer):
    fund(customer, points=500)
    body = {"address": customer.wallet_address, "deductPoints": 200, "yggRedemptionId": "r-9"}
    key = {"Idempotency-Key": "deduct-1"}
    first = points_api.post("/deduct-points-by-address", body, headers=key)
    assert first.status_code == 200
    again = points_api.post("/deduct-points-by-address", body, headers=key)
    assert again.json() == first.json()
    # The same redemption again without the key: the original, no second deduction.
    points_api.post("/deduct-points-by-address", body)
    txn = first.json()["partnerTransactionId"]
    revert = points_api.post(
        "/revert-deduct-points", {**body, "partnerTransactionId": txn, "revertReason": "refund"}
    )
    assert revert.status_code == 200
    confirm = points_api.post(
        "/confirm-redemption",
        {
            **body,
            "status": "reverted",
            "usdAmount": 1.5,
            "yggAmount": 2.5,
            "priceYggUsd": 0.6,
            "txnConfirmed": False,
            "txnHash": "0x1",
            "initialAt": "2026-11-20T10:00:00Z",
            "pendingAt": 1763632800000,
            "claimedAt": "2026-11-20T10:05:00.000Z",
        },
    )
    assert confirm.status_code == 200, confirm.content
    events = events_of(customer)
    assert [e.type for e in events] == [
        "points.credited",
        "points.deducted",
        "points.reverted",
        "points.confirmed",
    ]
    assert [e.customer_sequence for e in events] == [1, 2, 3, 4]
    deducted, reverted, confirmed = events[1:]
    assert all(actor(e) == PARTNER and e.channel == "points-api" for e in events[1:])
    assert deducted.request_id  # the server's request id of that call
    deduction = PointTransaction.objects.get(partner_transaction_id=txn)
    assert reverted.data["original"]["id"] == deduction.pk
    assert reverted.data["original"]["points"] == -200
    assert reverted.data["point_transaction"]["reverts"] == deduction.pk
    assert reverted.reason == "refund"
    assert confirmed.data["status"] == "reverted"
    assert confirmed.data["point_transaction"]["id"] == deduction.pk
