"""Scoping, malformed input, oversized bodies and throttling across all partner endpoints.

Every refusal must be a 4xx in the family's own shape and change nothing.
"""

import json

import pytest
from django.core.cache import cache

from accounts.models import Customer
from ledger import services
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel
from tests.helpers import fund
from tests.partners.conftest import KeyClient, PointsClient, new_request_id

pytestmark = pytest.mark.django_db


def snapshot():
    """Everything a partner call could change."""
    return (
        list(Customer.objects.order_by("id").values_list("id", "balance", "points")),
        list(Stamp.objects.order_by("id").values_list("id", "count", "active", "redeemed", "memo")),
        list(BalanceUpdate.objects.order_by("id").values_list("id", "status")),
        list(PointTransaction.objects.order_by("id").values_list("id", "confirmation_status")),
        Stamp.history.count(),
        Customer.history.count(),
    )


def assert_stamp_shape(response, status):
    assert response.status_code == status, response.content
    payload = response.json()
    assert set(payload) == {"code", "message", "result"} and payload["code"] != 0
    assert payload["result"] is None


def assert_balance_shape(response, status):
    assert response.status_code == status, response.content
    payload = response.json()
    if status == 401:
        assert set(payload) == {"detail"}
    else:
        assert set(payload) == {"detail", "error_message", "error_code", "errors"}


def assert_points_shape(response, status):
    assert response.status_code == status, response.content
    payload = response.json()
    assert payload["success"] is False and payload["errorCode"].startswith("ERR-")
    assert isinstance(payload["errorMessage"], str)


# --- partner A against partner B's objects ---------------------------------------------------


@pytest.fixture
def foreign(other_partner):
    """Partner B's customer with value in every ledger, and a deduction made by B."""
    customer = fund(other_partner.customer, balance=100, points=100, store=other_partner.store)
    deduction = services.point_deduct(
        actor=other_partner.user,
        channel=Channel.POINTS_API,
        partner=other_partner,
        customer=customer,
        points=10,
        redemption_id="foreign-redemption",
    )
    other_partner.update = BalanceUpdate.objects.filter(customer=customer).first()
    other_partner.deduction = deduction
    return other_partner


def test_partner_a_cannot_touch_partner_b_through_the_stamp_api(stamp_api, foreign, card):
    before = snapshot()
    stamp = foreign.stamp
    for method, path, body, params in [
        ("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk}, None),
        ("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp.pk}, None),
        ("PUT", "/api/stamp/v1/update", {"stampIdx": stamp.pk, "stamps": 0}, None),
        ("GET", "/api/stamp/v1/validate", None, {"stampIdx": stamp.pk}),
        ("DELETE", "/api/stamp/v1/delete", None, {"stampIdx": stamp.pk}),
    ]:
        response = stamp_api.call(method, path, body, params=params)
        assert (response.status_code, response.json()["code"]) == (200, 1001), path
    # B's card, and B's customer on A's card, read as not found.
    create = {
        "cardIdx": stamp.card_id,
        "customer": foreign.customer.email,
        "strtYmd": "2026-01-01",
        "endYmd": "2026-12-31",
    }
    assert stamp_api.call("POST", "/api/stamp/v1/create", create).json()["message"] == (
        "cardIdx: stamp card not found"
    )
    create["cardIdx"] = card.pk
    assert stamp_api.call("POST", "/api/stamp/v1/create", create).json()["message"] == (
        "customer: customer not found"
    )
    assert snapshot() == before


def test_partner_a_cannot_touch_partner_b_through_the_balance_api(
    balance_api, foreign, merchant, store
):
    before = snapshot()
    move = {"user": foreign.customer.email, "amount": 5, "merchant": merchant.pk, "store": store.pk}
    for path in ("/api/balances/credit", "/api/balances/debit"):
        assert balance_api.call("POST", path, move).json()["error_code"] == "invalid_data"
        foreign_merchant = {**move, "merchant": foreign.primary_merchant_id}
        assert balance_api.call("POST", path, foreign_merchant).json()["error_code"] == (
            "invalid_merchant"
        )
    response = balance_api.call("POST", "/api/balances/cancel", {"id": foreign.update.pk})
    assert response.status_code == 404
    unknown = balance_api.call("POST", "/api/balances/cancel", {"id": 10**9})
    assert response.json() == unknown.json()  # no existence leak
    assert snapshot() == before


def test_partner_a_cannot_touch_partner_b_through_the_points_api(points_api, foreign):
    before = snapshot()
    address = foreign.customer.wallet_address
    assert points_api.get("/get-points-by-address", {"address": address}).status_code == 404
    deduct = {"address": address, "deductPoints": 1, "yggRedemptionId": "a-1"}
    assert points_api.post("/deduct-points-by-address", deduct).status_code == 404
    revert = {
        "address": address,
        "deductPoints": 10,
        "yggRedemptionId": "foreign-redemption",
        "partnerTransactionId": foreign.deduction.partner_transaction_id,
        "revertReason": "mine now",
    }
    response = points_api.post("/revert-deduct-points", revert)
    assert (response.status_code, response.json()["errorCode"]) == (
        404,
        "ERR-TRANSACTION-NOT-FOUND",
    )
    confirm = {
        "address": address,
        "deductPoints": 10,
        "usdAmount": 1,
        "yggAmount": 1,
        "priceYggUsd": 1,
        "yggRedemptionId": "foreign-redemption",
        "status": "claimed",
        "txnConfirmed": True,
        "initialAt": 1,
        "pendingAt": 1,
    }
    assert points_api.post("/confirm-redemption", confirm).status_code == 404
    assert snapshot() == before


def test_one_partners_keys_do_not_open_another_family(partner, stamp, other_partner):
    # The HMAC secret is not an API key, nor is the HMAC key id.
    for key in (partner.credentials.hmac_secret, partner.credentials.hmac_key):
        client = KeyClient("APIKey", key)
        assert client.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk}).status_code == 401
    points = PointsClient(partner.credentials.api_key, partner.credentials.hmac_secret)
    response = points.get("/get-points-by-address", {"address": "0x1"})
    assert response.json()["errorCode"] == "ERR-AUTH-FAILED"
    crossed = PointsClient(partner.credentials.hmac_key, other_partner.credentials.hmac_secret)
    response = crossed.get("/get-points-by-address", {"address": "0x1"})
    assert response.json()["errorCode"] == "ERR-INVALID-SIGNATURE"


# --- malformed input, every endpoint ---------------------------------------------------------

BAD_BODIES = [
    "{",
    "not json",
    "[]",
    "[1, 2]",
    '"text"',
    "42",
    "null",
    "true",
    "NaN",
    '{"a": Infinity}',
    "\xff\xfe",
    "{}",
]

BAD_INTEGERS = [
    None,
    True,
    False,
    1.5,
    -1,
    0,
    "",
    " 1",
    "1e3",
    "0x10",
    "-5",
    "١٢",
    10**12 + 1,
    "9" * 5000,
    [],
    {},
    "12.0",
]


def stamp_endpoints(stamp_id):
    return [
        ("POST", "/api/stamp/v1/create", "cardIdx"),
        ("PUT", "/api/stamp/v1/add", "stampIdx"),
        ("PUT", "/api/stamp/v1/remove", "stampIdx"),
        ("PUT", "/api/stamp/v1/update", "stampIdx"),
    ]


@pytest.mark.parametrize("raw", BAD_BODIES)
def test_malformed_bodies_on_the_stamp_api(stamp_api, stamp, raw):
    before = snapshot()
    for method, path, _ in stamp_endpoints(stamp.pk):
        response = stamp_api.call(method, path, raw=raw)
        assert_stamp_shape(response, 400)
    assert snapshot() == before


@pytest.mark.parametrize("value", BAD_INTEGERS)
def test_bad_integers_on_the_stamp_api(stamp_api, stamp, card, customer, value):
    before = snapshot()
    for method, path, field in stamp_endpoints(stamp.pk):
        body = {
            "stampIdx": stamp.pk,
            "cardIdx": card.pk,
            "customer": customer.email,
            "strtYmd": "2026-01-01",
            "endYmd": "2026-12-31",
            field: value,
        }
        response = stamp_api.call(method, path, body)
        assert_stamp_shape(response, 400)
        assert response.json()["message"].startswith(f"{field}: ")
    for path in ("/api/stamp/v1/validate", "/api/stamp/v1/delete"):
        method = "GET" if path.endswith("validate") else "DELETE"
        params = {} if value is None else {"stampIdx": json.dumps(value)}
        assert_stamp_shape(stamp_api.call(method, path, params=params), 400)
    assert snapshot() == before


@pytest.mark.parametrize("raw", BAD_BODIES)
def test_malformed_bodies_on_the_balance_api(balance_api, raw):
    before = snapshot()
    for path in ("/api/balances/credit", "/api/balances/debit", "/api/balances/cancel"):
        assert_balance_shape(balance_api.call("POST", path, raw=raw), 400)
    assert snapshot() == before


@pytest.mark.parametrize("value", BAD_INTEGERS)
def test_bad_integers_on_the_balance_api(balance_api, customer, merchant, store, value):
    before = snapshot()
    for field in ("amount", "merchant", "store"):
        body = {
            "user": customer.email,
            "amount": 5,
            "merchant": merchant.pk,
            "store": store.pk,
            field: value,
        }
        response = balance_api.call("POST", "/api/balances/credit", body)
        assert_balance_shape(response, 400)
        assert response.json()["errors"].keys() == {field}
    response = balance_api.call("POST", "/api/balances/cancel", {"id": value})
    assert_balance_shape(response, 400)
    assert snapshot() == before


@pytest.mark.parametrize("raw", BAD_BODIES)
def test_malformed_bodies_on_the_points_api(points_api, customer, raw):
    fund(customer, points=100)
    before = snapshot()
    for path in ("/deduct-points-by-address", "/revert-deduct-points", "/confirm-redemption"):
        try:
            json.loads(raw)
            parseable = True
        except ValueError:
            parseable = False
        if parseable:
            # Signed like any client would sign it: validation, not the signature, refuses it.
            assert_points_shape(points_api.call("POST", path, raw=raw), 400)
        else:
            # Unparseable JSON cannot be canonicalised, so it cannot carry a valid signature.
            headers = {
                "X-API-KEY": points_api.hmac_key,
                "X-API-REQUEST": "x",
                "X-API-SIGNATURE": "0" * 64,
            }
            response = points_api.client.generic(
                "POST", path, raw, headers=headers, content_type="application/json"
            )
            assert_points_shape(response, 400)
    assert snapshot() == before


@pytest.mark.parametrize("value", BAD_INTEGERS)
def test_bad_integers_on_the_points_api(points_api, customer, value):
    fund(customer, points=100)
    before = snapshot()
    body = {"address": customer.wallet_address, "deductPoints": value, "yggRedemptionId": "r"}
    assert_points_shape(points_api.post("/deduct-points-by-address", body), 400)
    assert snapshot() == before


def test_oversized_bodies_are_413_in_each_shape(stamp_api, balance_api, points_api, stamp):
    big = json.dumps({"stampIdx": stamp.pk, "memo": "x" * (64 * 1024)})
    assert_stamp_shape(stamp_api.call("PUT", "/api/stamp/v1/add", raw=big), 413)
    assert_balance_shape(balance_api.call("POST", "/api/balances/credit", raw=big), 413)
    assert_points_shape(points_api.call("POST", "/deduct-points-by-address", raw=big), 413)


@pytest.mark.parametrize("depth", [65, 600])
def test_deeply_nested_bodies_are_400_in_each_shape(stamp_api, balance_api, points_api, depth):
    # 600 levels fit in 1.2 KB; canonicalising them for the Points API's signature check
    # exhausted Python's stack (RecursionError, answered 500).
    deep = "[" * depth + "]" * depth
    before = snapshot()
    assert_stamp_shape(stamp_api.call("PUT", "/api/stamp/v1/add", raw=deep), 400)
    assert_balance_shape(balance_api.call("POST", "/api/balances/credit", raw=deep), 400)
    headers = {
        "X-API-KEY": points_api.hmac_key,
        "X-API-REQUEST": new_request_id(),
        "X-API-SIGNATURE": "0" * 64,
    }
    response = points_api.client.generic(
        "POST", "/deduct-points-by-address", deep, headers=headers, content_type="application/json"
    )
    assert_points_shape(response, 400)
    assert response.json()["errorMessage"] == "body: The body is nested deeper than 64 levels."
    assert snapshot() == before


def test_a_body_nested_64_deep_is_still_read(stamp_api, stamp):
    nested = {"stampIdx": stamp.pk, "extra": json.loads("[" * 63 + "]" * 63)}
    assert stamp_api.call("PUT", "/api/stamp/v1/add", nested).json()["code"] == 0


def test_unknown_fields_are_ignored(stamp_api, stamp):
    response = stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk, "extra": [1]})
    assert response.json()["code"] == 0


def test_wrong_methods_are_405_in_the_family_shape(stamp_api, balance_api, points_api):
    assert_stamp_shape(stamp_api.call("GET", "/api/stamp/v1/add"), 405)
    assert_balance_shape(balance_api.call("GET", "/api/balances/credit"), 405)
    assert_points_shape(points_api.call("GET", "/deduct-points-by-address"), 405)


# --- throttling -----------------------------------------------------------------------------


def test_each_family_is_throttled_per_partner_in_its_own_shape(
    settings, stamp_api, balance_api, points_api, stamp, other_partner
):
    settings.PARTNER_THROTTLE_RATE = "3/min"
    cache.clear()
    for _ in range(3):
        assert (
            stamp_api.call(
                "GET", "/api/stamp/v1/validate", params={"stampIdx": stamp.pk}
            ).status_code
            == 200
        )
    assert_stamp_shape(
        stamp_api.call("GET", "/api/stamp/v1/validate", params={"stampIdx": stamp.pk}), 429
    )
    # The budget is the partner's, across families.
    assert_balance_shape(balance_api.call("POST", "/api/balances/cancel", {"id": 1}), 429)
    assert_points_shape(points_api.get("/get-points-by-address", {"address": "0x1"}), 429)
    # Another partner has its own budget.
    other = KeyClient("APIKey", other_partner.credentials.api_key)
    response = other.call("GET", "/api/stamp/v1/validate", params={"stampIdx": stamp.pk})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("6000/min", (6000, 60)), ("10/s", (10, 1)), ("5/hour", (5, 3600)), ("7/day", (7, 86400))],
)
def test_rates_are_read_like_drf_rates(rate, expected):
    from partners.throttling import parse_rate

    assert parse_rate(rate) == expected


def test_a_signed_json_null_body_is_checked_as_a_body_not_as_an_empty_one(points_api, customer):
    """`null` is signed as "null" (canonical JSON), and refused for its missing fields."""
    fund(customer, points=100)
    before = snapshot()
    response = points_api.call("POST", "/deduct-points-by-address", raw="null")
    assert_points_shape(response, 400)
    assert response.json()["errorCode"] == "ERR-INVALID-REQUEST"
    assert "empty" not in response.json()["errorMessage"]
    assert snapshot() == before
