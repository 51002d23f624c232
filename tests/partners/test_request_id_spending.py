"""A deduction spends its X-API-REQUEST in its own statement (ledger.statements.move_found);
every other outcome must spend it exactly as before: once the signature is good, whatever
the request's fate, and never twice.

Each case runs in autocommit (transactional tests: the statement is its own transaction)
and inside a transaction (the test's, as under an Idempotency-Key: a savepoint)."""

import pytest
from django.db import connection

from ledger.models import PointTransaction
from partners.models import SignedRequestId
from tests.partners.test_points_api import deduct_body, points

PATH = "/deduct-points-by-address"
BOTH = pytest.mark.parametrize(
    "db_mode",
    [
        pytest.param(True, id="autocommit", marks=pytest.mark.django_db(transaction=True)),
        pytest.param(False, id="in-transaction", marks=pytest.mark.django_db),
    ],
)


@pytest.fixture
def db_mode(request):
    return request.param


@pytest.fixture
def use_db(db_mode):
    assert connection.in_atomic_block is not db_mode  # the mode is what it says


@pytest.fixture
def wallet(use_db, customer):
    from tests.helpers import fund

    fund(customer, points=5000)
    return customer


def replay(points_api, first, body):
    return points_api.call("POST", PATH, body, request_id=first.request_id)


def assert_spent(points_api, first, body):
    again = replay(points_api, first, body)
    assert (again.status_code, again.json()["errorCode"]) == (409, "ERR-DUPLICATE-REQUEST")
    assert again.json()["errorMessage"] == "This X-API-REQUEST was already used."
    assert SignedRequestId.objects.filter(request_id=first.request_id).count() == 1


@BOTH
def test_a_deduction_spends_its_request_id(points_api, wallet):
    first = points_api.post(PATH, deduct_body(wallet, 100, "r-ok"))
    assert first.status_code == 200
    assert_spent(points_api, first, deduct_body(wallet, 100, "r-other"))
    assert points(wallet) == 4900  # the replay moved nothing


@BOTH
def test_insufficient_points_spend_the_request_id_and_not_the_redemption(points_api, wallet):
    first = points_api.post(PATH, deduct_body(wallet, 999999, "r-big"))
    assert (first.status_code, first.json()["errorCode"]) == (422, "ERR-INSUFFICIENT-POINTS")
    assert first.json()["errorMessage"] == "User has 5000 points, cannot deduct 999999."
    assert_spent(points_api, first, deduct_body(wallet, 1, "r-big"))
    assert points(wallet) == 5000
    assert points_api.post(PATH, deduct_body(wallet, 1, "r-big")).status_code == 200


@BOTH
def test_an_unknown_address_spends_the_request_id(points_api, wallet):
    body = {"address": "0x" + "9" * 40, "deductPoints": 1, "yggRedemptionId": "r-nobody"}
    first = points_api.post(PATH, body)
    assert (first.status_code, first.json()["errorCode"]) == (404, "ERR-USER-NOT-FOUND")
    assert_spent(points_api, first, body)


@BOTH
def test_a_duplicate_redemption_spends_the_request_id_and_names_the_original(points_api, wallet):
    original = points_api.post(PATH, deduct_body(wallet, 100, "r-dup"))
    duplicate = points_api.post(PATH, deduct_body(wallet, 100, "r-dup"))
    assert (duplicate.status_code, duplicate.json()["errorCode"]) == (409, "ERR-DUPLICATE-REQUEST")
    assert duplicate.json()["partnerTransactionId"] == original.json()["partnerTransactionId"]
    assert_spent(points_api, duplicate, deduct_body(wallet, 100, "r-dup-2"))
    assert points(wallet) == 4900
    assert PointTransaction.objects.filter(redemption_id="r-dup").count() == 1


@BOTH
def test_a_refused_input_spends_the_request_id(points_api, wallet):
    body = {"address": wallet.wallet_address, "deductPoints": "many", "yggRedemptionId": "r-bad"}
    first = points_api.post(PATH, body)
    assert (first.status_code, first.json()["errorCode"]) == (400, "ERR-INVALID-REQUEST")
    assert_spent(points_api, first, deduct_body(wallet, 1, "r-bad"))
    assert points(wallet) == 5000


@BOTH
def test_an_empty_address_never_finds_a_customer_without_a_wallet(points_api, wallet, merchant):
    from tests import factories

    nobody = factories.CustomerFactory(merchant=merchant, wallet_address="")
    body = {"address": "  ", "deductPoints": 1, "yggRedemptionId": "r-empty"}
    first = points_api.post(PATH, body)
    assert first.status_code in (400, 404)
    assert not PointTransaction.objects.filter(customer=nobody).exists()
    assert_spent(points_api, first, body)


@BOTH
def test_with_an_idempotency_key_the_id_is_spent_before_the_move(points_api, wallet):
    headers = {"Idempotency-Key": "k-1"}
    first = points_api.post(PATH, deduct_body(wallet, 999999, "r-k"), headers=headers)
    assert first.json()["errorCode"] == "ERR-INSUFFICIENT-POINTS"
    again = points_api.call(
        "POST",
        PATH,
        deduct_body(wallet, 999999, "r-k"),
        request_id=first.request_id,
        headers=headers,
    )
    assert (again.status_code, again.json()["errorCode"]) == (409, "ERR-DUPLICATE-REQUEST")
    ok = points_api.post(PATH, deduct_body(wallet, 10, "r-k"), headers={"Idempotency-Key": "k-2"})
    assert ok.status_code == 200
    assert points(wallet) == 4990
