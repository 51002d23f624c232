"""Statements per partner request: the work each endpoint needs and no more.

A budget that grows means a query crept into the hot path (bench/RESULTS.md measures time).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.helpers import fund, postgres_only

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _throttle_outside_the_database(settings):
    # Production keeps throttle counters in Redis; the database cache (used when REDIS_URL is
    # unset) would add its own bookkeeping statements to every request.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def statements(call) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200, response.content
    return [q["sql"].split()[0] for q in captured.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_deduct_needs_two_statements(points_api, customer):
    fund(customer, points=100)
    body = {"address": customer.wallet_address, "deductPoints": 1, "yggRedemptionId": "q-1"}
    sql = statements(lambda: points_api.post("/deduct-points-by-address", body))
    # the credential; then one statement in autocommit (ledger.statements.move_found): the
    # request id, the customer by address, the customer's update, the deduction, both
    # history rows and the event. No BEGIN, no COMMIT.
    assert sql == ["SELECT", "WITH"]


def test_deduct_inside_a_transaction_takes_a_savepoint(points_api, customer):
    # Inside a caller's transaction (here the test's) a failing statement must not abort it.
    fund(customer, points=100)
    body = {"address": customer.wallet_address, "deductPoints": 1, "yggRedemptionId": "q-1"}
    sql = statements(lambda: points_api.post("/deduct-points-by-address", body))
    assert sql == ["SELECT", "SAVEPOINT", "WITH", "RELEASE"]


def test_get_points_needs_three_statements(points_api, customer):
    sql = statements(
        lambda: points_api.get("/get-points-by-address", {"address": customer.wallet_address})
    )
    assert len(sql) <= 3, sql


@pytest.mark.django_db(transaction=True)
def test_debit_statements(balance_api, customer, merchant, store):
    fund(customer, balance=10)
    body = {"user": customer.email, "amount": 1, "merchant": merchant.pk, "store": store.pk}
    sql = statements(lambda: balance_api.call("POST", "/api/balances/debit", body))
    # the credential with its merchants; then one statement in autocommit finds the store and
    # the customer, and writes the move, its history and its event (no BEGIN, no COMMIT)
    assert sql == ["SELECT", "WITH"]


@pytest.mark.django_db(transaction=True)
def test_credit_statements(balance_api, customer, merchant, store):
    body = {"user": customer.member_id, "amount": 1, "merchant": merchant.pk, "store": store.pk}
    sql = statements(lambda: balance_api.call("POST", "/api/balances/credit", body))
    assert sql == ["SELECT", "WITH"]


@postgres_only  # the SQLite demo keeps the ORM path
def test_remove_statements(stamp_api, card, customer):
    stamp = factories.StampFactory(card=card, customer=customer, count=3)
    sql = statements(lambda: stamp_api.call("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp.pk}))
    # credential; in one transaction (a savepoint here) one statement finds the
    # partner's stamp and locks its customer then it, one (ledger.statements.move_stamp)
    # checks the daily cap and writes the count, its history row, the customer's event count
    # and the event
    assert sql == ["SELECT", "SAVEPOINT", "WITH", "WITH", "RELEASE"], sql


@postgres_only
def test_add_statements(stamp_api, card, customer):
    stamp = factories.StampFactory(card=card, customer=customer, count=3)
    sql = statements(lambda: stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk}))
    # as a removal, without the cap
    assert sql == ["SELECT", "SAVEPOINT", "WITH", "WITH", "RELEASE"], sql
