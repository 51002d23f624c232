"""Races on real PostgreSQL: threads released together by a barrier, then the invariants.

Each scenario is repeated over several rounds with fresh rows, so that a race window that is
only sometimes hit still shows up.
"""

import pytest

from accounts.models import Customer
from ledger import errors, reconcile, services
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel
from tests import factories
from tests.helpers import fund, postgres_only, run_concurrently

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

ROUNDS = 5


def outcomes(results, error_type):
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, error_type)]
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, error_type)]
    assert unexpected == [], unexpected
    return ok, refused


def assert_ledger_consistent():
    violations, _ = reconcile.run()
    assert violations == []


def test_two_debits_of_the_whole_balance_exactly_one_succeeds(store):
    for _ in range(ROUNDS * 2):
        customer = fund(factories.CustomerFactory(merchant=store.merchant), balance=10)
        results = run_concurrently(
            2,
            lambda i, c=customer: services.balance_debit(
                actor=None, channel=Channel.BALANCE_API, customer=c, store=store, amount=10
            ),
        )
        ok, refused = outcomes(results, errors.InsufficientBalance)
        assert (len(ok), len(refused)) == (1, 1)
        assert Customer.objects.get(pk=customer.pk).balance == 0
    assert_ledger_consistent()


def test_thirty_deductions_of_one_redemption_make_exactly_one_row(partner):
    for round_ in range(ROUNDS):
        customer = fund(factories.CustomerFactory(merchant=partner.primary_merchant), points=1000)
        redemption = f"redemption-{round_}"
        results = run_concurrently(
            30,
            lambda i, c=customer, r=redemption: services.point_deduct(
                actor=partner.user,
                channel=Channel.POINTS_API,
                partner=partner,
                customer=c,
                points=10,
                redemption_id=r,
            ),
        )
        ok, duplicates = outcomes(results, errors.DuplicateRedemption)
        assert (len(ok), len(duplicates)) == (1, 29)
        assert {d.original.pk for d in duplicates} == {ok[0].pk}
        assert PointTransaction.objects.filter(redemption_id=redemption).count() == 1
        assert Customer.objects.get(pk=customer.pk).points == 990
    assert_ledger_consistent()


def test_one_redemption_sent_for_different_customers_is_deducted_once(partner):
    customers = [
        fund(factories.CustomerFactory(merchant=partner.primary_merchant), points=100)
        for _ in range(10)
    ]
    results = run_concurrently(
        10,
        lambda i: services.point_deduct(
            actor=partner.user,
            channel=Channel.POINTS_API,
            partner=partner,
            customer=customers[i],
            points=10,
            redemption_id="shared-redemption",
        ),
    )
    ok, duplicates = outcomes(results, errors.DuplicateRedemption)
    assert (len(ok), len(duplicates)) == (1, 9)
    assert sum(Customer.objects.get(pk=c.pk).points for c in customers) == 990
    assert_ledger_consistent()


def test_twenty_removals_at_count_five_exactly_five_succeed(card):
    for _ in range(ROUNDS):
        stamp = factories.StampFactory(card=card, count=5)
        results = run_concurrently(
            20,
            lambda i, s=stamp: services.stamp_remove(
                actor=None, channel=Channel.STAMP_API, stamp=s
            ),
        )
        ok, at_zero = outcomes(results, errors.StampCountZero)
        assert (len(ok), len(at_zero)) == (5, 15)
        assert Stamp.objects.get(pk=stamp.pk).count == 0
        assert Stamp.history.filter(id=stamp.pk, operation="stamp_remove").count() == 5
    assert_ledger_consistent()


def test_the_daily_cap_holds_under_concurrent_removals(card):
    stamp = factories.StampFactory(card=card, count=10)
    results = run_concurrently(
        12,
        lambda i: services.stamp_remove(
            actor=None, channel=Channel.STAMP_API, stamp=stamp, daily_cap=4
        ),
    )
    ok, capped = outcomes(results, errors.CorrectionLimitReached)
    assert (len(ok), len(capped)) == (4, 8)
    assert Stamp.objects.get(pk=stamp.pk).count == 6


def test_two_cancels_of_one_update_exactly_one_succeeds(store):
    for _ in range(ROUNDS * 2):
        customer = factories.CustomerFactory(merchant=store.merchant)
        update = services.balance_credit(
            actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=50
        )
        results = run_concurrently(
            2,
            lambda i, u=update: services.balance_update_cancel(
                actor=None, channel=Channel.BALANCE_API, balance_update=u
            ),
        )
        ok, refused = outcomes(results, errors.AlreadyCanceled)
        assert (len(ok), len(refused)) == (1, 1)
        assert BalanceUpdate.objects.get(pk=update.pk).status == "Canceled"
        assert Customer.objects.get(pk=customer.pk).balance == 0
    assert_ledger_consistent()


def test_concurrent_reverts_of_one_deduction_exactly_one_succeeds(partner):
    for round_ in range(ROUNDS):
        customer = fund(factories.CustomerFactory(merchant=partner.primary_merchant), points=100)
        deduction = services.point_deduct(
            actor=None,
            channel=Channel.POINTS_API,
            partner=partner,
            customer=customer,
            points=40,
            redemption_id=f"revert-race-{round_}",
        )
        results = run_concurrently(
            10,
            lambda i, d=deduction: services.point_deduction_revert(
                actor=None, channel=Channel.POINTS_API, deduction=d
            ),
        )
        ok, refused = outcomes(results, errors.AlreadyReverted)
        assert (len(ok), len(refused)) == (1, 9)
        assert Customer.objects.get(pk=customer.pk).points == 100
    assert_ledger_consistent()


def test_mixed_credits_and_debits_on_one_customer_keep_the_sum(store):
    customer = fund(factories.CustomerFactory(merchant=store.merchant), balance=100)

    def move(i):
        operation = services.balance_credit if i % 2 else services.balance_debit
        return operation(
            actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=7
        )

    results = run_concurrently(24, move)
    outcomes(results, errors.InsufficientBalance)
    assert Customer.objects.get(pk=customer.pk).balance == 100
    assert_ledger_consistent()
