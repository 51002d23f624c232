"""Points API (README, wire reference) with real HMAC signatures both ways."""

import datetime as dt
import json
import time

import pytest
from django.test import Client

from accounts.models import Customer
from ledger import services
from ledger.models import PointTransaction
from loyalty.audit import Channel
from partners.services import partner_create
from tests import factories
from tests.helpers import fund
from tests.partners.conftest import PointsClient, uuid7_at

pytestmark = pytest.mark.django_db

REDEMPTION = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture
def wallet(customer):
    fund(customer, points=5000)
    return customer


def points(customer):
    return Customer.objects.get(pk=customer.pk).points


def deduct_body(customer, amount=1000, redemption=REDEMPTION):
    return {
        "address": customer.wallet_address.upper().replace("0X", "0x"),
        "deductPoints": amount,
        "yggRedemptionId": redemption,
    }


def test_get_points_by_address_is_signed_and_case_insensitive(points_api, wallet):
    response = points_api.get(
        "/get-points-by-address", {"address": wallet.wallet_address.upper().replace("0X", "0x")}
    )
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "partnerUserId": str(wallet.pk),
        "address": wallet.wallet_address,
        "points": 5000,
        "chain": "abstract",
    }


def test_unknown_address_is_user_not_found(points_api, wallet):
    response = points_api.get("/get-points-by-address", {"address": "0x" + "9" * 40})
    assert (response.status_code, response.json()["errorCode"]) == (404, "ERR-USER-NOT-FOUND")
    assert response.json()["success"] is False


def test_deduct_then_duplicate_returns_the_original_transaction(points_api, wallet, partner):
    response = points_api.post("/deduct-points-by-address", deduct_body(wallet))
    assert response.status_code == 200
    txn_id = response.json()["partnerTransactionId"]
    assert response.json() == {"success": True, "partnerTransactionId": txn_id}
    txn = PointTransaction.objects.get(partner_transaction_id=txn_id)
    assert (txn.points, txn.redemption_id, txn.customer) == (-1000, REDEMPTION, wallet)
    row = txn.history.first()
    assert (row.history_user, row.channel) == (partner.user, "points-api")
    again = points_api.post("/deduct-points-by-address", deduct_body(wallet))
    assert again.status_code == 409
    assert again.json()["errorCode"] == "ERR-DUPLICATE-REQUEST"
    assert again.json()["partnerTransactionId"] == txn_id
    assert points(wallet) == 4000


def test_insufficient_points_do_not_use_up_the_redemption_id(points_api, wallet):
    response = points_api.post("/deduct-points-by-address", deduct_body(wallet, 6000))
    assert (response.status_code, response.json()["errorCode"]) == (422, "ERR-INSUFFICIENT-POINTS")
    assert not PointTransaction.objects.filter(kind="deduct").exists()
    fund(wallet, points=1000)
    assert (
        points_api.post("/deduct-points-by-address", deduct_body(wallet, 6000)).status_code == 200
    )
    assert points(wallet) == 0


def test_revert_restores_once_and_a_second_revert_returns_the_original_revert(points_api, wallet):
    txn_id = points_api.post("/deduct-points-by-address", deduct_body(wallet)).json()[
        "partnerTransactionId"
    ]
    revert = {**deduct_body(wallet), "partnerTransactionId": txn_id, "revertReason": "expired"}
    first = points_api.post("/revert-deduct-points", revert)
    assert first.status_code == 200
    assert first.json()["partnerTransactionId"] == txn_id
    revert_id = first.json()["partnerRevertId"]
    assert PointTransaction.objects.get(partner_transaction_id=revert_id).reason == "expired"
    second = points_api.post("/revert-deduct-points", revert)
    assert (second.status_code, second.json()["errorCode"]) == (409, "ERR-DUPLICATE-REQUEST")
    assert second.json()["partnerRevertId"] == revert_id
    assert points(wallet) == 5000


@pytest.mark.parametrize(
    "change",
    [{"deductPoints": 999}, {"yggRedemptionId": "other"}, {"address": "0x" + "1" * 40}],
)
def test_revert_fields_must_match_the_deduction(points_api, wallet, change):
    txn_id = points_api.post("/deduct-points-by-address", deduct_body(wallet)).json()[
        "partnerTransactionId"
    ]
    revert = {
        **deduct_body(wallet),
        "partnerTransactionId": txn_id,
        "revertReason": "expired",
        **change,
    }
    response = points_api.post("/revert-deduct-points", revert)
    assert (response.status_code, response.json()["errorCode"]) == (400, "ERR-INVALID-REQUEST")
    assert points(wallet) == 4000


def test_revert_of_an_unknown_transaction_is_not_found(points_api, wallet):
    revert = {**deduct_body(wallet), "partnerTransactionId": "txn_nope", "revertReason": "expired"}
    response = points_api.post("/revert-deduct-points", revert)
    assert (response.status_code, response.json()["errorCode"]) == (
        404,
        "ERR-TRANSACTION-NOT-FOUND",
    )


def confirm_body(customer, status="claimed", **changes):
    return {
        "address": customer.wallet_address,
        "deductPoints": 1000,
        "usdAmount": 12.5,
        "yggAmount": 80.123456789,
        "priceYggUsd": 0.156,
        "yggRedemptionId": REDEMPTION,
        "status": status,
        "txnConfirmed": True,
        "txnHash": "0xabc",
        "initialAt": "2026-11-20T10:00:00Z",
        "pendingAt": 1763632800000,
        "claimedAt": "2026-11-20T10:05:00.000Z",
        **changes,
    }


def test_confirm_records_the_outcome_and_moves_no_points(points_api, wallet):
    points_api.post("/deduct-points-by-address", deduct_body(wallet))
    response = points_api.post("/confirm-redemption", confirm_body(wallet))
    assert (response.status_code, response.json()) == (200, {"success": True})
    txn = PointTransaction.objects.get(kind="deduct")
    assert (txn.confirmation_status, str(txn.usd_amount), txn.txn_hash, txn.needs_attention) == (
        "claimed",
        "12.5000000000",
        "0xabc",
        False,
    )
    assert points(wallet) == 4000


def test_confirm_reverted_for_an_unreverted_deduction_is_flagged(points_api, wallet):
    points_api.post("/deduct-points-by-address", deduct_body(wallet))
    points_api.post(
        "/confirm-redemption",
        confirm_body(wallet, "reverted", claimedAt=None, revertedAt="2026-11-20T11:00:00Z"),
    )
    assert PointTransaction.objects.get(kind="deduct").needs_attention is True
    assert points(wallet) == 4000


def test_confirm_of_an_unknown_redemption_is_not_found(points_api, wallet):
    response = points_api.post("/confirm-redemption", confirm_body(wallet))
    assert response.json()["errorCode"] == "ERR-TRANSACTION-NOT-FOUND"


@pytest.mark.parametrize(
    "change",
    [
        # numeric(30, 18) holds less than 10^12: these were a database error, answered 500
        {"priceYggUsd": 10**13},
        {"priceYggUsd": "999999999999.9999999999999999999"},  # rounds up to 10^12
        {"usdAmount": "1e20"},
        # moments whose UTC year is 0 or 10000 were stored, then could not be read back by the
        # staff API or the admin
        {"pendingAt": "0001-01-01T00:00:00+01:00"},
        {"claimedAt": "9999-12-31T23:59:59-01:00"},
    ],
    ids=str,
)
def test_confirm_refuses_amounts_and_moments_the_database_cannot_hold(points_api, wallet, change):
    points_api.post("/deduct-points-by-address", deduct_body(wallet))
    response = points_api.post("/confirm-redemption", confirm_body(wallet, **change))
    field = next(iter(change))
    assert (response.status_code, response.json()["errorCode"]) == (400, "ERR-INVALID-REQUEST")
    assert response.json()["errorMessage"].startswith(f"{field}: ")
    assert PointTransaction.objects.get(kind="deduct").confirmation_status == ""


def test_confirm_keeps_amounts_at_the_column_scale_and_moments_in_utc(points_api, wallet):
    points_api.post("/deduct-points-by-address", deduct_body(wallet))
    body = confirm_body(
        wallet,
        usdAmount="1e-999999999",  # PostgreSQL cannot even parse it: rounds to 0 here
        priceYggUsd="999999999999.999999999999999999",
        initialAt="2026-11-20T10:00:00+21:50",  # PostgreSQL refused this offset: a 500
    )
    response = points_api.post("/confirm-redemption", body)
    assert (response.status_code, response.json()) == (200, {"success": True})
    txn = PointTransaction.objects.get(kind="deduct")
    assert (str(txn.usd_amount), str(txn.price_ygg_usd)) == (
        "0E-10",
        "999999999999.999999999999999999",
    )
    assert txn.initial_at == dt.datetime(2026, 11, 19, 12, 10, tzinfo=dt.UTC)


# --- authentication -------------------------------------------------------------------------


def raw_post(path, body_text, headers):
    return Client().generic(
        "POST", path, body_text, content_type="application/json", headers=headers
    )


def test_missing_headers(points_api, wallet):
    body = json.dumps(deduct_body(wallet))
    headers = points_api.headers("POST", "/deduct-points-by-address", body)
    for missing in headers:
        partial = {k: v for k, v in headers.items() if k != missing}
        response = raw_post("/deduct-points-by-address", body, partial)
        assert (response.status_code, response.json()["errorCode"]) == (401, "ERR-MISSING-HEADERS")
    assert points(wallet) == 5000


def test_unknown_key_then_bad_signature(points_api, wallet):
    body = json.dumps(deduct_body(wallet))
    headers = points_api.headers("POST", "/deduct-points-by-address", body)
    response = raw_post("/deduct-points-by-address", body, {**headers, "X-API-KEY": "hk_nope"})
    assert response.json()["errorCode"] == "ERR-AUTH-FAILED"
    response = raw_post("/deduct-points-by-address", body, {**headers, "X-API-SIGNATURE": "0" * 64})
    assert (response.status_code, response.json()["errorCode"]) == (401, "ERR-INVALID-SIGNATURE")


def test_a_tampered_body_or_path_fails_the_signature(points_api, wallet):
    body = json.dumps(deduct_body(wallet, 10))
    headers = points_api.headers("POST", "/deduct-points-by-address", body)
    tampered = body.replace('"deductPoints": 10', '"deductPoints": 1000')
    assert raw_post("/deduct-points-by-address", tampered, headers).json()["errorCode"] == (
        "ERR-INVALID-SIGNATURE"
    )
    revert_headers = points_api.headers("POST", "/revert-deduct-points", body)
    assert raw_post("/deduct-points-by-address", body, revert_headers).json()["errorCode"] == (
        "ERR-INVALID-SIGNATURE"
    )
    assert points(wallet) == 5000


def test_a_body_signed_with_other_key_order_and_spacing_is_accepted(points_api, wallet):
    address = wallet.wallet_address
    body = f'{{ "yggRedemptionId" : "r-1",\n "deductPoints": 5.0, "address": "{address}" }}'
    response = points_api.call("POST", "/deduct-points-by-address", raw=body)
    assert response.status_code == 200 and points(wallet) == 4995


def test_a_request_id_400_seconds_old_is_expired(points_api, wallet):
    stale = uuid7_at(time.time() - 400)
    response = points_api.post("/deduct-points-by-address", deduct_body(wallet), request_id=stale)
    assert (response.status_code, response.json()["errorCode"]) == (401, "ERR-REQUEST-EXPIRED")
    future = uuid7_at(time.time() + 400)
    response = points_api.post("/deduct-points-by-address", deduct_body(wallet), request_id=future)
    assert response.json()["errorCode"] == "ERR-REQUEST-EXPIRED"
    assert points(wallet) == 5000


def test_a_request_id_that_is_not_a_uuid7_is_refused(points_api, wallet):
    response = points_api.post(
        "/deduct-points-by-address",
        deduct_body(wallet),
        request_id="0f8fad5b-d9cb-469f-a165-70867728950e",
    )
    assert (response.status_code, response.json()["errorCode"]) == (401, "ERR-AUTH-FAILED")


def test_a_replayed_request_id_is_409(points_api, wallet):
    first = points_api.get("/get-points-by-address", {"address": wallet.wallet_address})
    replay = points_api.call(
        "GET",
        "/get-points-by-address",
        params={"address": wallet.wallet_address},
        request_id=first.request_id,
    )
    assert (replay.status_code, replay.json()["errorCode"]) == (409, "ERR-DUPLICATE-REQUEST")


def test_a_forged_request_does_not_use_up_the_genuine_request_id(points_api, wallet):
    body = json.dumps(deduct_body(wallet))
    headers = points_api.headers("POST", "/deduct-points-by-address", body)
    forged = raw_post("/deduct-points-by-address", body, {**headers, "X-API-SIGNATURE": "f" * 64})
    assert forged.json()["errorCode"] == "ERR-INVALID-SIGNATURE"
    genuine = raw_post("/deduct-points-by-address", body, headers)
    assert genuine.status_code == 200


def test_errors_as_200_keeps_the_body_and_signs_it(merchant, wallet):
    _partner, creds = partner_create(
        actor=None,
        channel=Channel.COMMAND,
        name="Lenient",
        merchants=[merchant],
        errors_as_200=True,
    )
    client = PointsClient(creds.hmac_key, creds.hmac_secret)
    response = client.post("/deduct-points-by-address", deduct_body(wallet, 999999))
    assert response.status_code == 200  # PointsClient also checked the signature
    assert response.json() == {
        "success": False,
        "errorCode": "ERR-INSUFFICIENT-POINTS",
        "errorMessage": "User has 5000 points, cannot deduct 999999.",
    }


def test_idempotency_key_replays_the_stored_body_signed_for_the_new_request(points_api, wallet):
    headers = {"Idempotency-Key": "deduct-1"}
    first = points_api.post("/deduct-points-by-address", deduct_body(wallet), headers=headers)
    again = points_api.post("/deduct-points-by-address", deduct_body(wallet), headers=headers)
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert points(wallet) == 4000
    other = points_api.post("/deduct-points-by-address", deduct_body(wallet, 5), headers=headers)
    assert (other.status_code, other.json()["errorCode"]) == (422, "ERR-IDEMPOTENCY-KEY-REUSED")


def test_the_public_docs_sample_body_works_unchanged(merchant):
    customer = factories.CustomerFactory(
        merchant=merchant, wallet_address="0xabcd000000000000000000000000000000000001"
    )
    fund(customer, points=1500)
    _, creds = partner_create(
        actor=None,
        channel=Channel.COMMAND,
        name="YGG",
        merchants=[merchant],
        hmac_secret="ygg-shared-secret-for-docs",
    )
    client = PointsClient(creds.hmac_key, "ygg-shared-secret-for-docs")
    body = (
        '{"yggRedemptionId":"0f8fad5b-d9cb-469f-a165-70867728950e",'
        '"address":"0xAbCd000000000000000000000000000000000001","deductPoints":1000}'
    )
    response = client.call("POST", "/deduct-points-by-address", raw=body)
    assert response.json()["success"] is True
    assert points(customer) == 500


def test_points_act_on_the_primary_merchant_only(points_api, partner, wallet):
    second = factories.MerchantFactory()
    partner.merchants.add(second)
    elsewhere = fund(factories.CustomerFactory(merchant=second), points=100)
    response = points_api.get("/get-points-by-address", {"address": elsewhere.wallet_address})
    assert response.json()["errorCode"] == "ERR-USER-NOT-FOUND"


def test_a_staff_revert_then_a_partner_revert_is_a_duplicate(points_api, wallet, support):
    txn_id = points_api.post("/deduct-points-by-address", deduct_body(wallet)).json()[
        "partnerTransactionId"
    ]
    services.point_deduction_revert(
        actor=support,
        channel=Channel.ADMIN,
        deduction=PointTransaction.objects.get(partner_transaction_id=txn_id),
        reason="customer complaint",
    )
    revert = {**deduct_body(wallet), "partnerTransactionId": txn_id, "revertReason": "expired"}
    assert points_api.post("/revert-deduct-points", revert).status_code == 409
    assert points(wallet) == 5000


def test_a_replay_is_caught_however_many_requests_came_since(points_api, wallet):
    first = points_api.get("/get-points-by-address", {"address": wallet.wallet_address})
    for _ in range(320):  # more than a default cache's MAX_ENTRIES (300) would keep
        assert points_api.get("/get-points-by-address", {"address": "0x1"}).status_code == 404
    replay = points_api.call(
        "GET",
        "/get-points-by-address",
        params={"address": wallet.wallet_address},
        request_id=first.request_id,
    )
    assert (replay.status_code, replay.json()["errorCode"]) == (409, "ERR-DUPLICATE-REQUEST")
