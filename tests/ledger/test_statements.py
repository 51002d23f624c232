"""The one-statement moves (ledger.statements) leave exactly the rows the ORM path leaves:
the same ledger row, the same customer, and the same two history rows, column for column."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from accounts.models import Customer
from ledger import errors, services, statements
from ledger.models import BalanceUpdate, PointTransaction
from loyalty.audit import Channel, UnattributedChange
from loyalty.request_id import _request_id
from tests import factories
from tests.helpers import fund, postgres_only

pytestmark = [pytest.mark.django_db, postgres_only]

# Columns that differ between any two rows by nature: identities, times, generated references.
IDENTITY = {"id", "history_id", "history_date", "created", "partner_transaction_id"}
CUSTOMER_IDENTITY = {"email", "member_id", "wallet_address", "name"}


def columns(instance, *, skip=()) -> dict:
    values = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
    return {k: v for k, v in values.items() if k not in IDENTITY | set(skip)}


def latest_history(model, **filters):
    return model.history.model.objects.filter(**filters).order_by("-history_id").first()


@pytest.fixture
def both_paths(monkeypatch, merchant):
    """Run `operation(customer)` once per path on two identical customers; returns
    [(entry, customer), ...] for the one-statement path then the ORM path."""

    def run(operation, *, funded: dict):
        results = []
        for one_statement in (True, False):
            monkeypatch.setattr(statements, "available", lambda v=one_statement: v)
            customer = fund(factories.CustomerFactory(merchant=merchant), **funded)
            token = _request_id.set(f"req-{one_statement}")
            try:
                outcome = operation(customer)
            except errors.DomainError as exc:
                outcome = exc
            finally:
                _request_id.reset(token)
            results.append((outcome, Customer.objects.get(pk=customer.pk)))
        return results

    return run


def assert_same_rows(results, entry_model, *, differing=()):
    (fast, fast_customer), (orm, orm_customer) = results
    assert isinstance(fast, entry_model) and isinstance(orm, entry_model)
    skip = {"customer_id", *differing}  # two customers, and what the test made distinct
    assert columns(fast, skip=skip) == columns(orm, skip=skip)
    stored = entry_model.objects.get(pk=fast.pk)
    assert model_to_dict(stored) == model_to_dict(fast)  # the returned instance is the row
    assert columns(fast_customer, skip=CUSTOMER_IDENTITY) == columns(
        orm_customer, skip=CUSTOMER_IDENTITY
    )
    fast_entry_history = latest_history(entry_model, id=fast.pk)
    orm_entry_history = latest_history(entry_model, id=orm.pk)
    assert fast_entry_history.history_type == "+"
    # request ids differ on purpose (each path ran under its own)
    assert fast_entry_history.request_id == "req-True"
    assert orm_entry_history.request_id == "req-False"
    skip_history = skip | {"request_id"}
    assert columns(fast_entry_history, skip=skip_history) == columns(
        orm_entry_history, skip=skip_history
    )
    fast_customer_history = latest_history(Customer, id=fast_customer.pk)
    orm_customer_history = latest_history(Customer, id=orm_customer.pk)
    assert fast_customer_history.history_type == "~"
    skip_customer = CUSTOMER_IDENTITY | {"request_id"}
    assert columns(fast_customer_history, skip=skip_customer) == columns(
        orm_customer_history, skip=skip_customer
    )
    # and the history row shows the customer as it is now
    assert fast_customer_history.points == fast_customer.points
    assert fast_customer_history.balance == fast_customer.balance


def test_deduct_rows_match(both_paths, partner):
    results = both_paths(
        lambda customer: services.point_deduct(
            actor=partner.user,
            channel=Channel.POINTS_API,
            partner=partner,
            customer=customer,
            points=40,
            redemption_id=f"r-{customer.pk}",
        ),
        funded={"points": 100},
    )
    assert_same_rows(results, PointTransaction, differing={"redemption_id"})
    assert results[0][1].points == 60


def test_points_adjustment_with_reason_rows_match(both_paths, support):
    results = both_paths(
        lambda customer: services.points_adjust(
            actor=support,
            channel=Channel.STAFF_API,
            customer=customer,
            amount=-5,
            reason="goodwill reversal",
        ),
        funded={"points": 10},
    )
    assert_same_rows(results, PointTransaction)
    history = latest_history(PointTransaction, id=results[0][0].pk)
    assert (history.history_user_id, history.history_change_reason, history.channel) == (
        support.pk,
        "goodwill reversal",
        "staff-api",
    )
    assert history.operation == "points_adjust"


def test_debit_and_credit_rows_match(both_paths, partner, store):
    debit = both_paths(
        lambda customer: services.balance_debit(
            actor=partner.user,
            channel=Channel.BALANCE_API,
            customer=customer,
            store=store,
            amount=7,
        ),
        funded={"balance": 10},
    )
    assert_same_rows(debit, BalanceUpdate)
    assert debit[0][1].balance == 3
    credit = both_paths(
        lambda customer: services.balance_credit(
            actor=partner.user,
            channel=Channel.BALANCE_API,
            customer=customer,
            store=store,
            amount=7,
        ),
        funded={"balance": 1},
    )
    assert_same_rows(credit, BalanceUpdate)


def test_refusals_match_and_write_nothing(both_paths, partner, store):
    results = both_paths(
        lambda customer: services.balance_debit(
            actor=partner.user,
            channel=Channel.BALANCE_API,
            customer=customer,
            store=store,
            amount=11,
        ),
        funded={"balance": 10},
    )
    (fast, fast_customer), (orm, orm_customer) = results
    assert isinstance(fast, errors.InsufficientBalance)
    assert (fast.code, str(fast), fast.details) == (orm.code, str(orm), orm.details)
    for customer in (fast_customer, orm_customer):
        assert customer.balance == 10
        assert BalanceUpdate.objects.filter(customer=customer).count() == 1  # the funding
        assert customer.history.count() == 2  # created, funded


def test_a_move_outside_an_audited_block_is_refused(customer):
    entry = PointTransaction(
        customer=customer, merchant_id=customer.merchant_id, kind="credit", points=1
    )
    with pytest.raises(UnattributedChange):
        statements.move(
            customer=customer, column="points", delta=1, entry=entry, after="points_after"
        )
    assert PointTransaction.objects.count() == 0
