"""Holes an integrator found in the partner APIs' wire: strings that were numbers, a revert
without its reason, and a credential's "errors as HTTP 200" switch applied too late."""

import json
import time

import pytest
from django.test import Client

from accounts.models import Customer
from ledger import services
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel
from partners.services import partner_create
from tests.helpers import fund
from tests.partners.conftest import PointsClient, uuid7_at

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        list(Customer.objects.order_by("id").values_list("id", "balance", "points")),
        list(Stamp.objects.order_by("id").values_list("id", "count")),
        BalanceUpdate.objects.count(),
        PointTransaction.objects.count(),
    )


@pytest.fixture
def wallet(customer):
    return fund(customer, points=5000)


@pytest.fixture
def deduction(wallet, partner):
    return services.point_deduct(
        actor=partner.user,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=wallet,
        points=100,
        redemption_id="12345",
    )


def revert_body(deduction, **change):
    return {
        "address": deduction.customer.wallet_address,
        "deductPoints": -deduction.points,
        "yggRedemptionId": deduction.redemption_id,
        "partnerTransactionId": deduction.partner_transaction_id,
        "revertReason": "customer cancelled the order",
        **change,
    }


def assert_invalid_request(response, field: str):
    assert response.status_code == 400, response.content
    payload = response.json()
    assert (payload["success"], payload["errorCode"]) == (False, "ERR-INVALID-REQUEST")
    assert payload["errorMessage"].startswith(f"{field}: "), payload


# --- string fields take JSON strings only ---------------------------------------------------


@pytest.mark.parametrize("value", [12345, 12.5, True, ["12345"], {"id": "12345"}])
def test_a_redemption_id_that_is_not_a_json_string_is_refused(points_api, wallet, value):
    before = snapshot()
    body = {"address": wallet.wallet_address, "deductPoints": 10, "yggRedemptionId": value}
    assert_invalid_request(points_api.post("/deduct-points-by-address", body), "yggRedemptionId")
    assert snapshot() == before


def test_every_string_field_of_the_points_api_takes_strings_only(points_api, deduction):
    before = snapshot()
    for name in ("address", "yggRedemptionId", "partnerTransactionId", "revertReason"):
        body = revert_body(deduction, **{name: 12345})
        assert_invalid_request(points_api.post("/revert-deduct-points", body), name)
    address = {"address": 12345, "deductPoints": 10, "yggRedemptionId": "r-2"}
    assert_invalid_request(points_api.post("/deduct-points-by-address", address), "address")
    assert snapshot() == before


def test_string_fields_of_the_stamp_and_balance_apis_take_strings_only(
    stamp_api, balance_api, card, customer, merchant, store
):
    before = snapshot()
    create = {
        "cardIdx": card.pk,
        "customer": customer.email,
        "strtYmd": "2026-01-01",
        "endYmd": "2026-12-31",
    }
    for name in ("customer", "memo", "userId", "userNm"):
        response = stamp_api.call("POST", "/api/stamp/v1/create", {**create, name: 1002})
        assert response.status_code == 400, response.content
        assert response.json()["message"].startswith(f"{name}: ")
    move = {"user": customer.email, "amount": 5, "merchant": merchant.pk, "store": store.pk}
    for name in ("user", "type"):
        response = balance_api.call("POST", "/api/balances/credit", {**move, name: 1002})
        assert response.status_code == 400, response.content
        assert response.json()["errors"].keys() == {name}
    assert snapshot() == before


def test_a_redemption_id_sent_as_a_string_of_digits_still_deducts(points_api, wallet):
    body = {"address": wallet.wallet_address, "deductPoints": 10, "yggRedemptionId": "12345"}
    assert points_api.post("/deduct-points-by-address", body).status_code == 200


# --- a revert is a correction: it needs its reason -------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "  ", "ab", "x" * 501])
def test_a_revert_needs_a_reason_of_3_to_500_characters(points_api, deduction, reason):
    before = snapshot()
    body = revert_body(deduction, revertReason=reason)
    if reason is None:
        del body["revertReason"]
    assert_invalid_request(points_api.post("/revert-deduct-points", body), "revertReason")
    assert snapshot() == before


def test_a_revert_with_its_reason_restores_the_points_and_records_the_reason(points_api, deduction):
    response = points_api.post("/revert-deduct-points", revert_body(deduction))
    assert response.status_code == 200, response.content
    revert = PointTransaction.objects.get(reverts=deduction)
    assert revert.reason == "customer cancelled the order"


# --- "errors as HTTP 200" from the moment the key is known ----------------------------------


@pytest.fixture
def lenient(merchant):
    _partner, credentials = partner_create(
        actor=None,
        channel=Channel.COMMAND,
        name="Lenient",
        merchants=[merchant],
        errors_as_200=True,
    )
    return PointsClient(credentials.hmac_key, credentials.hmac_secret)


def raw_post(path: str, body: str, headers: dict):
    return Client().generic("POST", path, body, content_type="application/json", headers=headers)


def deduct(wallet, redemption="r-1"):
    return {"address": wallet.wallet_address, "deductPoints": 10, "yggRedemptionId": redemption}


def assert_refused_as_200(response, code: str):
    assert response.status_code == 200, response.content
    assert response.json()["success"] is False
    assert response.json()["errorCode"] == code


def test_a_bad_signature_is_answered_200_for_an_errors_as_200_credential(lenient, wallet):
    before = snapshot()
    body = json.dumps(deduct(wallet))
    headers = lenient.headers("POST", "/deduct-points-by-address", body)
    response = raw_post("/deduct-points-by-address", body, {**headers, "X-API-SIGNATURE": "0" * 64})
    assert_refused_as_200(response, "ERR-INVALID-SIGNATURE")
    assert snapshot() == before


def test_an_expired_request_is_answered_200_for_an_errors_as_200_credential(lenient, wallet):
    before = snapshot()
    body = json.dumps(deduct(wallet))
    stale = uuid7_at(time.time() - 400)
    headers = lenient.headers("POST", "/deduct-points-by-address", body, request_id=stale)
    assert_refused_as_200(
        raw_post("/deduct-points-by-address", body, headers), "ERR-REQUEST-EXPIRED"
    )
    assert snapshot() == before


def test_a_replayed_request_id_is_answered_200_for_an_errors_as_200_credential(lenient, wallet):
    body = json.dumps(deduct(wallet))
    headers = lenient.headers("POST", "/deduct-points-by-address", body)
    assert raw_post("/deduct-points-by-address", body, headers).status_code == 200
    before = snapshot()
    replay = raw_post("/deduct-points-by-address", body, headers)
    assert_refused_as_200(replay, "ERR-DUPLICATE-REQUEST")
    assert snapshot() == before


def test_a_body_that_is_not_json_is_answered_200_for_an_errors_as_200_credential(lenient):
    headers = lenient.headers("POST", "/deduct-points-by-address", "")
    response = raw_post("/deduct-points-by-address", "{not json", headers)
    assert_refused_as_200(response, "ERR-INVALID-REQUEST")


def test_missing_headers_and_unknown_keys_stay_401_since_the_credential_is_unknown(lenient, wallet):
    body = json.dumps(deduct(wallet))
    headers = lenient.headers("POST", "/deduct-points-by-address", body)
    missing = {k: v for k, v in headers.items() if k != "X-API-SIGNATURE"}
    response = raw_post("/deduct-points-by-address", body, missing)
    assert (response.status_code, response.json()["errorCode"]) == (401, "ERR-MISSING-HEADERS")
    unknown = {**headers, "X-API-KEY": "hk_unknown"}
    response = raw_post("/deduct-points-by-address", body, unknown)
    assert (response.status_code, response.json()["errorCode"]) == (401, "ERR-AUTH-FAILED")
