"""A row settled by its ledger move's own statement (ledger.statements.Settle): the batch row
locked if still `ready`, the move only then, the row marked `applied` with the move's before,
after and entry, all in one statement; a row no longer ready moves nothing, also when another
transaction marks it while the move waits for its lock (real threads, PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import Customer
from ledger import batches, corrections, errors, services, statements
from ledger.models import (
    BalanceUpdate,
    CorrectionBatch,
    CorrectionBatchRow,
    Event,
    PointTransaction,
)
from loyalty.audit import Channel, audited
from tests import factories
from tests.helpers import fund

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: one statement"),
    pytest.mark.django_db(transaction=True),
]
READY, APPLIED = CorrectionBatchRow.Status.READY, CorrectionBatchRow.Status.APPLIED


def batch_row(support, merchant, customer, kind="adjust_points", amount=5, status=READY):
    with audited(actor=support, channel=Channel.STAFF_API, operation="batch_create"):
        batch = CorrectionBatch.objects.create(
            merchant=merchant, reason="bulk fix", created_by=support, channel=Channel.STAFF_API,
            created=timezone.now(),
        )  # fmt: skip
    return CorrectionBatchRow.objects.create(
        batch=batch, line=2, kind=kind, target=customer.member_id, amount=amount,
        reason="bulk fix", status=status, target_id=customer.pk, subject=customer.pk * 4 + 1,
    )  # fmt: skip


def settle_of(row) -> statements.Settle:
    return statements.Settle(
        CorrectionBatchRow,
        row.pk,
        expect={"status": READY},
        values={"status": APPLIED, "applied_at": timezone.now()},
        before="before",
        after="after",
        entry="result_id",
    )


def adjust(support, customer, amount, settle, kind="adjust_points"):
    return corrections.BY_KIND[kind].apply(
        actor=support, channel=Channel.STAFF_API, target=customer, reason="bulk fix",
        amount=amount, settle=settle,
    )  # fmt: skip


def written(customer) -> tuple[int, int, int]:
    return (
        PointTransaction.objects.filter(customer=customer).count(),
        BalanceUpdate.objects.filter(customer=customer).count(),
        Event.objects.filter(customer_id=customer.pk).count(),
    )


@pytest.mark.parametrize(("kind", "column"), [("adjust_points", "points"),
                                              ("adjust_balance", "balance")])  # fmt: skip
def test_a_ready_row_moves_and_is_settled_by_the_one_statement(
    support, merchant, kind, column, django_assert_num_queries
):
    customer = fund(factories.CustomerFactory(merchant=merchant), points=10, balance=10)
    row = batch_row(support, merchant, customer, kind=kind, amount=-4)
    settle = settle_of(row)
    with django_assert_num_queries(1):
        entry = adjust(support, customer, -4, settle, kind=kind)
    assert settle.taken is True
    row.refresh_from_db()
    assert (row.status, row.before, row.after, row.result_id) == (APPLIED, 10, 6, entry.pk)
    assert getattr(Customer.objects.get(pk=customer.pk), column) == 6
    history = type(entry).history.filter(id=entry.pk).get()
    operation = corrections.BY_KIND[kind].operation
    assert (history.operation, history.history_user_id) == (operation, support.pk)
    sequence = Customer.objects.get(pk=customer.pk).event_sequence  # counted by the move
    assert Event.objects.filter(customer_id=customer.pk, customer_sequence=sequence).exists()


def test_a_row_no_longer_ready_moves_nothing(support, merchant):
    customer = fund(factories.CustomerFactory(merchant=merchant), points=10)
    row = batch_row(support, merchant, customer, status=APPLIED)
    before = written(customer)
    settle = settle_of(row)
    with pytest.raises(errors.ClaimTaken):
        adjust(support, customer, 5, settle)
    assert settle.taken is False
    assert Customer.objects.get(pk=customer.pk).points == 10
    assert written(customer) == before
    row.refresh_from_db()
    assert (row.status, row.before, row.after, row.result_id) == (APPLIED, None, None, None)


def test_a_refused_move_leaves_the_row_ready(support, merchant):
    customer = fund(factories.CustomerFactory(merchant=merchant), points=3)
    row = batch_row(support, merchant, customer, amount=-5)
    before = written(customer)
    settle = settle_of(row)
    with pytest.raises(errors.InsufficientPoints):
        adjust(support, customer, -5, settle)
    assert settle.taken is True
    assert written(customer) == before
    row.refresh_from_db()
    assert (row.status, row.result_id) == (READY, None)


def test_a_row_marked_while_the_move_waits_for_its_lock_moves_nothing(support, merchant):
    """Another transaction marks the row (and holds it); the settled move waits on the row's
    lock, re-reads it after the commit, and moves nothing."""
    customer = fund(factories.CustomerFactory(merchant=merchant), points=10)
    row = batch_row(support, merchant, customer)
    before = written(customer)
    holding, release, outcome = threading.Event(), threading.Event(), {}

    def other_worker():
        try:
            with transaction.atomic():
                CorrectionBatchRow.objects.filter(pk=row.pk, status=READY).update(status=APPLIED)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    def settled_move():
        settle = settle_of(row)
        try:
            adjust(support, customer, 5, settle)
        except errors.ClaimTaken:
            outcome["taken"] = settle.taken
        finally:
            connections.close_all()

    holder = threading.Thread(target=other_worker)
    holder.start()
    assert holding.wait(10)
    mover = threading.Thread(target=settled_move)
    mover.start()
    time.sleep(0.5)
    assert mover.is_alive()  # waiting for the row's lock
    release.set()
    holder.join(10)
    mover.join(10)
    assert outcome == {"taken": False}
    assert Customer.objects.get(pk=customer.pk).points == 10
    assert written(customer) == before


def test_a_batch_applied_in_autocommit_settles_each_row_in_one_statement(
    support, merchant, django_assert_num_queries
):
    customer = fund(factories.CustomerFactory(merchant=merchant, member_id="S-1"), points=10)
    batch = batches.create_batch(
        actor=support, channel=Channel.STAFF_API, merchant=merchant, reason="bulk fix",
        rows=[{"kind": "adjust_points", "target": "S-1", "amount": a} for a in (2, -20, -5)],
    )  # fmt: skip
    # Previewed: 10 -> 12, -20 invalid, 12 -> 7. Spent meanwhile, so that the last is refused.
    services.points_adjust(
        actor=support, channel=Channel.STAFF_API, customer=customer, amount=-9, reason="spent"
    )
    batches.apply_batch(batch, support, channel=Channel.STAFF_API)
    batch = CorrectionBatch.objects.select_related("created_by", "approval").get(pk=batch.pk)
    first, last = CorrectionBatchRow.objects.filter(batch=batch, status=READY).order_by("line")
    target = Customer.objects.get(pk=customer.pk)
    with django_assert_num_queries(1):
        batches._apply_row(batch, first, target)
    batches._apply_row(batch, last, target)
    got = {r.line: (r.status, r.before, r.after, r.error_code)
           for r in CorrectionBatchRow.objects.filter(batch=batch)}  # fmt: skip
    assert got == {
        1: (APPLIED, 1, 3, ""),  # JSON rows: a row's line is its position
        2: ("invalid", None, None, "insufficient_points"),
        3: ("refused", 12, 7, "insufficient_points"),  # the preview's figures stay
    }
    assert Customer.objects.get(pk=customer.pk).points == 3
