"""The database itself refuses what would break an invariant, whatever the Python code does."""

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import Customer
from ledger import services
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel, audited
from tests import factories
from tests.helpers import fund, postgres_only

pytestmark = pytest.mark.django_db


def raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def credit(customer, store):
    return services.balance_credit(
        actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=100
    )


@pytest.fixture
def deduction(customer, partner):
    fund(customer, points=100)
    return services.point_deduct(
        actor=None,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=customer,
        points=10,
        redemption_id="r-1",
    )


def test_negative_balance_is_rejected_by_a_check_constraint(customer):
    with pytest.raises(IntegrityError, match="customer_balance_gte_0"):
        raw("UPDATE accounts_customer SET balance = -1 WHERE id = %s", [customer.pk])


def test_count_above_the_maximum_is_rejected(stamp):
    with pytest.raises(IntegrityError, match="stamp_count_lte_max"):
        raw("UPDATE ledger_stamp SET count = 11 WHERE id = %s", [stamp.pk])


def test_second_deduction_of_a_redemption_is_rejected_by_a_unique_constraint(deduction):
    copy = PointTransaction(
        customer=deduction.customer,
        merchant_id=deduction.merchant_id,
        partner=deduction.partner,
        kind="deduct",
        points=-1,
        points_after=0,
        redemption_id="r-1",
        partner_transaction_id="txn_copy",
    )
    with (
        pytest.raises(IntegrityError),
        transaction.atomic(),
        audited(actor=None, channel=Channel.COMMAND),
    ):
        copy.save()


def test_second_revert_is_rejected_by_a_unique_constraint(deduction):
    services.point_deduction_revert(actor=None, channel=Channel.POINTS_API, deduction=deduction)
    copy = PointTransaction(
        customer=deduction.customer,
        merchant_id=deduction.merchant_id,
        kind="revert",
        points=10,
        points_after=100,
        reverts=deduction,
        partner_transaction_id="rvt_copy",
    )
    with (
        pytest.raises(IntegrityError),
        transaction.atomic(),
        audited(actor=None, channel=Channel.COMMAND),
    ):
        copy.save()


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_balanceupdate SET amount = 1 WHERE id = %s",
        "UPDATE ledger_balanceupdate SET balance_after = 0 WHERE id = %s",
        "UPDATE ledger_balanceupdate SET customer_id = customer_id + 1000 WHERE id = %s",
        "DELETE FROM ledger_balanceupdate WHERE id = %s",
    ],
)
def test_balance_update_amounts_and_owners_are_immutable(credit, sql):
    with pytest.raises(IntegrityError, match="forbidden"):
        raw(sql, [credit.pk])
    assert BalanceUpdate.objects.get(pk=credit.pk).amount == 100


@postgres_only
def test_a_canceled_update_cannot_be_uncanceled(credit, support):
    services.balance_update_cancel(
        actor=support, channel=Channel.ADMIN, balance_update=credit, reason="mistake"
    )
    with pytest.raises(IntegrityError, match="forbidden"):
        raw(
            "UPDATE ledger_balanceupdate SET status = 'Success', canceled_at = NULL WHERE id = %s",
            [credit.pk],
        )


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_pointtransaction SET points = -1 WHERE id = %s",
        "UPDATE ledger_pointtransaction SET redemption_id = 'other' WHERE id = %s",
        "DELETE FROM ledger_pointtransaction WHERE id = %s",
    ],
)
def test_point_transactions_are_immutable(deduction, sql):
    with pytest.raises(IntegrityError, match="forbidden"):
        raw(sql, [deduction.pk])


@postgres_only
def test_confirmation_fields_of_a_deduction_may_change(deduction):
    raw("UPDATE ledger_pointtransaction SET txn_hash = '0x1' WHERE id = %s", [deduction.pk])


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM ledger_stamp WHERE id = %s",
        "UPDATE ledger_stamp SET max_stamps = 99 WHERE id = %s",
    ],
)
def test_stamps_are_never_deleted_nor_reassigned(stamp, sql):
    with pytest.raises(IntegrityError, match="forbidden"):
        raw(sql, [stamp.pk])
    assert Stamp.objects.filter(pk=stamp.pk).exists()


@postgres_only
def test_customers_are_never_deleted(customer):
    with pytest.raises(IntegrityError, match="forbidden"):
        raw("DELETE FROM accounts_customer WHERE id = %s", [customer.pk])


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_historicalstamp SET count = 7 WHERE id = %s",
        "DELETE FROM ledger_historicalstamp WHERE id = %s",
        "UPDATE ledger_historicalstamp SET history_change_reason = 'rewritten' WHERE id = %s",
    ],
)
def test_history_rows_are_append_only(stamp, sql):
    with pytest.raises(IntegrityError, match="append-only"):
        raw(sql, [stamp.pk])
    assert Stamp.history.filter(id=stamp.pk).count() == 1


@postgres_only
def test_customer_history_is_append_only(customer):
    with pytest.raises(IntegrityError, match="append-only"):
        raw("DELETE FROM accounts_historicalcustomer WHERE id = %s", [customer.pk])
    assert Customer.history.filter(id=customer.pk).exists()


def test_unrelated_columns_of_a_stamp_still_change(stamp):
    raw("UPDATE ledger_stamp SET memo = 'note' WHERE id = %s", [stamp.pk])
    assert factories.StampFactory._meta.model.objects.get(pk=stamp.pk).memo == "note"
