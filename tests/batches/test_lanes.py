"""Correction batches on several connections (BATCH_THREADS, BATCH_PREVIEW_THREADS) and the
preview's checkpoints without a savepoint per service call: the same rows, before/after and
history as one connection, one customer's rows in line order, every row applied once."""

from __future__ import annotations

import io

import pytest
from django.db import connection

from accounts.models import Customer
from ledger import batches, services
from ledger.models import CorrectionBatch, CorrectionBatchRow, Event, PointTransaction
from loyalty.audit import Channel
from tests import factories
from tests.batches.conftest import csv_bytes
from tests.helpers import fund, run_concurrently


def create(support, merchant, lines: list[str], reason="bulk fix of the import"):
    return batches.create_batch(
        actor=support,
        channel=Channel.STAFF_API,
        merchant=merchant,
        reason=reason,
        file=io.BytesIO(csv_bytes("kind,target,amount", *lines)),
    )


def results(batch) -> dict[int, tuple]:
    rows = CorrectionBatchRow.objects.filter(batch=batch).order_by("line")
    return {r.line: (r.status, r.before, r.after, r.error_code) for r in rows}


def drain():
    while batches.run_due():
        pass


def expected(lines: list[str], start: dict[str, int]) -> dict[int, tuple]:
    """What a serial, row-by-row preview answers for adjust_points rows: cumulative per
    target, a row that would go below zero refused (and not counted)."""
    value = dict(start)
    answer = {}
    for line, text in enumerate(lines, 2):
        _kind, target, amount = text.split(",")
        before, after = value[target], value[target] + int(amount)
        if after < 0:
            answer[line] = ("invalid", None, None, "insufficient_points")
        else:
            answer[line] = ("ready", before, after, "")
            value[target] = after
    return answer


@pytest.mark.django_db
def test_refusals_inside_a_checkpoint_block_redo_it_with_the_same_results(support, merchant):
    """Blocks of the preview run without savepoints; a refused row redoes its block, and the
    rows after it (of the same customer, and of others) are previewed as one by one."""
    for i in range(4):
        fund(factories.CustomerFactory(merchant=merchant, member_id=f"P-{i}"), points=10)
    lines = []
    for round_ in range(60):  # 240 rows: several blocks, refusals in many of them
        for i in range(4):
            amount = -25 if (round_ + i) % 7 == 3 else round_ % 5 + 1
            lines.append(f"adjust_points,P-{i},{amount}")
    batch = create(support, merchant, lines)
    want = expected(lines, {f"P-{i}": 10 for i in range(4)})
    assert results(batch) == want
    assert any(status == "invalid" for status, *_ in want.values())
    # Nothing of the preview stayed (refused calls' writes included).
    assert set(Customer.objects.filter(merchant=merchant).values_list("points", flat=True)) == {10}
    assert not PointTransaction.objects.filter(kind="adjust").exists()


@pytest.mark.django_db
def test_a_second_revert_of_one_deduction_is_refused_in_the_preview(support, merchant, ledger):
    deduction = ledger["deduction"]
    batch = create(
        support,
        merchant,
        [
            "adjust_points,M-1,1",
            f"revert_points,{deduction.pk},",
            f"revert_points,{deduction.pk},",
            "adjust_points,M-1,2",
        ],
    )
    got = results(batch)
    assert got[2] == ("ready", 70, 71, "")
    assert got[3] == ("ready", 71, 101, "")
    assert got[4][0] == "invalid"
    assert got[5] == ("ready", 101, 103, "")


pg = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: lanes")


def mixed_batch(support, merchant, card, customers: int = 12, rounds: int = 5):
    """Rows of several kinds and customers, each customer named several times."""
    people = []
    for i in range(customers):
        customer = fund(
            factories.CustomerFactory(merchant=merchant, member_id=f"L-{i}"),
            points=50,
            balance=50,
        )
        stamp = factories.StampFactory(card=card, customer=customer)
        for _ in range(3):
            services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=stamp)
        people.append((customer, stamp))
    lines = []
    for round_ in range(rounds):
        for i, (_customer, stamp) in enumerate(people):
            lines.append(f"adjust_points,L-{i},{round_ + 1}")
            lines.append(f"adjust_balance,L-{i},-{round_ + 2}")
            if round_ < 4:  # the fourth removal of 3 stamps is refused
                lines.append(f"deduct_stamp,{stamp.pk},")
    return people, lines


@pg
@pytest.mark.django_db(transaction=True)
def test_lanes_preview_and_apply_as_one_connection_does(support, merchant, card, settings):
    people, lines = mixed_batch(support, merchant, card)
    settings.BATCH_PREVIEW_THREADS = 1
    serial = create(support, merchant, lines, reason="serial preview")
    settings.BATCH_PREVIEW_THREADS = 4
    parallel = create(support, merchant, lines, reason="parallel preview")
    assert results(parallel) == results(serial)
    assert {s for s, *_ in results(parallel).values()} == {"ready", "invalid"}

    settings.BATCH_THREADS = 4
    settings.BATCH_CHUNK = 25  # several chunks: a subject's rows span chunks
    batches.apply_batch(parallel, support, channel=Channel.STAFF_API)
    events_before = Event.objects.order_by("-id").values_list("id", flat=True).first()
    drain()
    parallel.refresh_from_db()
    assert (parallel.status, parallel.applied, parallel.refused) == (
        "completed",
        parallel.ready,
        0,
    )
    # Applied as previewed (cumulative values), so in line order per subject.
    got = results(parallel)
    for line, (status, before, after, _code) in results(serial).items():
        if status == "ready":
            assert got[line] == ("applied", before, after, ""), line
    for customer, stamp in people:
        customer.refresh_from_db()
        stamp.refresh_from_db()
        assert (customer.points, customer.balance, stamp.count) == (50 + 15, 50 - 20, 0)
        # One customer's events in line order, request ids naming the batch's lines.
        request_ids = list(
            Event.objects.filter(customer_id=customer.pk, id__gt=events_before)
            .order_by("customer_sequence")
            .values_list("request_id", flat=True)
        )
        numbers = [int(r.rsplit(":", 1)[1]) for r in request_ids]
        assert numbers == sorted(numbers) and len(numbers) == 5 + 5 + 3
        assert all(r.startswith(f"batch-{parallel.pk}:") for r in request_ids)


@pg
@pytest.mark.django_db(transaction=True)
def test_rows_applied_from_several_workers_at_once_apply_once(support, merchant, settings):
    """Without the batch's advisory lock (three chunk steps at once, each on four lanes):
    each row applies once, as its conditional mark decides."""
    for i in range(10):
        fund(factories.CustomerFactory(merchant=merchant, member_id=f"W-{i}"), points=100)
    lines = [f"adjust_points,W-{i % 10},{1 + i // 10}" for i in range(60)]
    batch = create(support, merchant, lines)
    batches.apply_batch(batch, support, channel=Channel.STAFF_API)
    batch = CorrectionBatch.objects.select_related("created_by", "approval").get(pk=batch.pk)
    settings.BATCH_THREADS = 4

    outcome = run_concurrently(3, lambda i: batches._apply_chunk(batch, 1000))
    assert all(isinstance(done, int) for done in outcome), outcome
    drain()
    batch.refresh_from_db()
    assert (batch.status, batch.applied, batch.refused) == ("completed", 60, 0)
    for i in range(10):
        customer = Customer.objects.get(merchant=merchant, member_id=f"W-{i}")
        assert customer.points == 100 + sum(range(1, 7))
        points = PointTransaction.objects.filter(customer=customer, kind="adjust")
        assert sorted(points.values_list("points", flat=True)) == [1, 2, 3, 4, 5, 6]


@pytest.mark.django_db
def test_a_row_the_service_refuses_at_apply_moves_nothing_and_the_next_applies(support, merchant):
    customer = fund(factories.CustomerFactory(merchant=merchant, member_id="R-1"), points=10)
    batch = create(
        support, merchant, ["adjust_points,R-1,-8", "adjust_points,R-1,1"], reason="refusal"
    )
    # Spent meanwhile: the first row no longer fits.
    services.points_adjust(
        actor=support, channel=Channel.STAFF_API, customer=customer, amount=-5, reason="spent"
    )
    batches.apply_batch(batch, support, channel=Channel.STAFF_API)
    drain()
    got = results(batch)
    assert (got[2][0], got[2][3]) == ("refused", "insufficient_points")
    assert got[3] == ("applied", 5, 6, "")
    assert Customer.objects.get(pk=customer.pk).points == 6
    batch.refresh_from_db()
    assert (batch.status, batch.applied, batch.refused) == ("completed", 1, 1)
