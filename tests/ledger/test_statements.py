"""The one-statement moves (ledger.statements) leave exactly the rows the ORM path leaves:
the same ledger row, the same customer, the same two history rows and the same event,
column for column."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from django.forms.models import model_to_dict

from accounts.models import Customer
from ledger import errors, services, statements
from ledger.models import BalanceUpdate, Event, PointTransaction
from loyalty.audit import Channel, UnattributedChange, approving
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
    assert_same_events(fast, orm)


def _event_of(entry) -> Event:
    """The entry's event, with the identities that differ between the two entries blanked."""
    event = Event.objects.filter(customer_id=entry.customer_id).order_by("-id").first()
    for key, value in event.data.items():
        if isinstance(value, dict) and key != "approval":  # the approval is the same in both
            assert value["id"] == (entry.reverts_id if key == "original" else entry.pk)
            # identities, and what the tests make distinct per customer
            for key in ("id", "partner_transaction_id", "redemption_id", "reverts"):
                value.pop(key, None)
    return event


def assert_same_events(fast, orm):
    fast_event, orm_event = _event_of(fast), _event_of(orm)
    skip = {"event_id", "customer_id", "request_id", "txid"}
    assert columns(fast_event, skip=skip) == columns(orm_event, skip=skip)
    assert (fast_event.request_id, orm_event.request_id) == ("req-True", "req-False")
    # Both are the same transaction's: its id, stamped by the trigger on either path.
    assert fast_event.txid is not None and orm_event.txid is not None
    assert fast_event.customer_sequence == fast.customer.event_sequence
    assert fast_event.event_id.startswith("evt_") and orm_event.event_id.startswith("evt_")


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
    assert _event_of(results[0][0]).reason == "goodwill reversal"
    history = latest_history(PointTransaction, id=results[0][0].pk)
    assert (history.history_user_id, history.history_change_reason, history.channel) == (
        support.pk,
        "goodwill reversal",
        "staff-api",
    )
    assert history.operation == "points_adjust"


def test_an_approved_adjustment_names_the_approver_on_both_paths(both_paths, support):
    # An approved correction runs inside `approving()`: both paths record the approver, the
    # approval and its reason in every history row and in the event's data.approval.
    superuser = factories.UserFactory(username="approver-1", is_superuser=True)

    def approved(customer):
        with approving(approver=superuser, approval_id=42, reason="checked twice"):
            return services.balance_adjust(
                actor=support, channel=Channel.STAFF_API, customer=customer, amount=-5,
                reason="requested",
            )  # fmt: skip

    results = both_paths(approved, funded={"balance": 10})
    assert_same_rows(results, BalanceUpdate)
    (fast, fast_customer), _orm = results
    for row in (
        latest_history(BalanceUpdate, id=fast.pk),
        latest_history(Customer, id=fast_customer.pk),
    ):
        assert (row.history_user_id, row.history_change_reason) == (support.pk, "requested")
        assert (row.approved_by_id, row.approval_id, row.approval_reason) == (
            superuser.pk,
            42,
            "checked twice",
        )
    assert _event_of(fast).data["approval"] == {
        "id": 42,
        "approved_by": superuser.username,
        "reason": "checked twice",
    }


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
        assert customer.events.count() == 1  # the funding's
        assert customer.event_sequence == 1


def test_a_move_outside_an_audited_block_is_refused(customer):
    entry = PointTransaction(
        customer=customer, merchant_id=customer.merchant_id, kind="credit", points=1
    )
    with pytest.raises(UnattributedChange):
        statements.move(
            customer=customer, column="points", delta=1, entry=entry, after="points_after"
        )
    assert PointTransaction.objects.count() == 0


def test_revert_rows_and_events_match(both_paths, partner, support):
    def revert(customer):
        deduction = services.point_deduct(
            actor=partner.user,
            channel=Channel.POINTS_API,
            partner=partner,
            customer=customer,
            points=30,
            redemption_id=f"r-{customer.pk}",
        )
        return services.point_deduction_revert(
            actor=support, channel=Channel.STAFF_API, deduction=deduction, reason="asked"
        )

    results = both_paths(revert, funded={"points": 50})
    assert_same_rows(results, PointTransaction, differing={"redemption_id", "reverts_id"})
    for entry, _customer in results:
        event = Event.objects.get(customer_id=entry.customer_id, type="points.reverted")
        assert event.data["original"]["id"] == entry.reverts_id
        assert event.data["original"]["points"] == -30
        assert event.customer_sequence == 3


def test_an_event_that_cannot_be_written_undoes_the_move(monkeypatch, customer):
    """One statement: if the event row is refused, the move and its history are too."""
    from ledger import events

    monkeypatch.setattr(events, "new_event_id", lambda: "evt_the_same")
    services.points_credit(actor=None, channel=Channel.COMMAND, customer=customer, points=5)
    versions = customer.history.count()
    with pytest.raises(IntegrityError):
        services.points_credit(actor=None, channel=Channel.COMMAND, customer=customer, points=7)
    customer.refresh_from_db()
    assert (customer.points, customer.event_sequence) == (5, 1)
    assert PointTransaction.objects.count() == Event.objects.count() == 1
    assert customer.history.count() == versions
