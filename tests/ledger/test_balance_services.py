import pytest

from accounts.models import Customer
from ledger import errors, services
from ledger.models import BalanceUpdate
from loyalty.audit import Channel
from loyalty.errors import InvalidInput
from tests import factories
from tests.helpers import fund

pytestmark = pytest.mark.django_db


def test_credit_raises_balance_and_records_balance_after(customer, store, partner):
    update = services.balance_credit(
        actor=partner.user,
        channel=Channel.BALANCE_API,
        customer=customer,
        store=store,
        amount=1000,
    )
    customer.refresh_from_db()
    assert customer.balance == 1000
    assert (update.effect, update.amount, update.status, update.balance_after) == (
        "credit",
        1000,
        "Success",
        1000,
    )
    row = update.history.first()
    assert (row.history_type, row.history_user, row.channel, row.operation) == (
        "+",
        partner.user,
        "balance-api",
        "balance_credit",
    )
    customer_row = customer.history.first()
    assert (customer_row.balance, customer_row.prev_record.balance) == (1000, 0)
    assert customer_row.history_user == partner.user


def test_debit_lowers_balance(customer, store):
    fund(customer, balance=500, store=store)
    update = services.balance_debit(
        actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=200
    )
    assert (update.effect, update.balance_after) == ("debit", 300)
    assert Customer.objects.get(pk=customer.pk).balance == 300


def test_debit_below_zero_is_refused_and_changes_nothing(customer, store):
    fund(customer, balance=100, store=store)
    with pytest.raises(errors.InsufficientBalance):
        services.balance_debit(
            actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=101
        )
    assert Customer.objects.get(pk=customer.pk).balance == 100
    assert BalanceUpdate.objects.count() == 1


@pytest.mark.parametrize("amount", [0, -5, 10**12 + 1, True, 1.5, "10", None])
def test_amount_must_be_an_integer_from_1_to_10_12(customer, store, amount):
    with pytest.raises(InvalidInput):
        services.balance_credit(
            actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=amount
        )
    assert not BalanceUpdate.objects.exists()


def test_store_of_another_merchant_is_refused(customer):
    foreign_store = factories.StoreFactory()
    with pytest.raises(InvalidInput):
        services.balance_credit(
            actor=None,
            channel=Channel.BALANCE_API,
            customer=customer,
            store=foreign_store,
            amount=5,
        )


def test_cancel_credit_reverses_it_once_with_reason(customer, store, support):
    update = services.balance_credit(
        actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=300
    )
    canceled = services.balance_update_cancel(
        actor=support, channel=Channel.ADMIN, balance_update=update, reason="Wrong customer"
    )
    assert canceled.status == "Canceled" and canceled.canceled_at is not None
    assert canceled.canceled_by == support
    assert Customer.objects.get(pk=customer.pk).balance == 0
    row = canceled.history.first()
    assert (row.history_type, row.history_user, row.channel, row.history_change_reason) == (
        "~",
        support,
        "admin",
        "Wrong customer",
    )
    assert {c.field for c in row.diff_against(row.prev_record).changes} >= {"status", "canceled_at"}
    with pytest.raises(errors.AlreadyCanceled):
        services.balance_update_cancel(
            actor=support, channel=Channel.ADMIN, balance_update=update, reason="again"
        )
    assert Customer.objects.get(pk=customer.pk).balance == 0


def test_cancel_debit_gives_the_amount_back(customer, store):
    fund(customer, balance=100, store=store)
    debit = services.balance_debit(
        actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=40
    )
    services.balance_update_cancel(actor=None, channel=Channel.BALANCE_API, balance_update=debit)
    assert Customer.objects.get(pk=customer.pk).balance == 100


def test_cancel_of_a_spent_credit_is_refused(customer, store):
    credit = services.balance_credit(
        actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=100
    )
    services.balance_debit(
        actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=60
    )
    with pytest.raises(errors.InsufficientBalance):
        services.balance_update_cancel(
            actor=None, channel=Channel.BALANCE_API, balance_update=credit
        )
    assert BalanceUpdate.objects.get(pk=credit.pk).status == "Success"
    assert Customer.objects.get(pk=customer.pk).balance == 40


def test_adjust_is_a_new_update_with_reason_and_no_store(customer, support):
    fund(customer, balance=50)
    update = services.balance_adjust(
        actor=support,
        channel=Channel.STAFF_API,
        customer=customer,
        amount=-20,
        reason="Goodwill correction",
    )
    assert (update.effect, update.amount, update.store, update.reason, update.balance_after) == (
        "debit",
        20,
        None,
        "Goodwill correction",
        30,
    )
    with pytest.raises(errors.InsufficientBalance):
        services.balance_adjust(
            actor=support,
            channel=Channel.STAFF_API,
            customer=customer,
            amount=-31,
            reason="too much",
        )
    with pytest.raises(errors.ReasonRequired):
        services.balance_adjust(
            actor=support, channel=Channel.STAFF_API, customer=customer, amount=5, reason=""
        )
    with pytest.raises(InvalidInput):
        services.balance_adjust(
            actor=support, channel=Channel.STAFF_API, customer=customer, amount=0, reason="zero"
        )
    assert Customer.objects.get(pk=customer.pk).balance == 30
