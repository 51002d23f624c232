"""Correction batches through the domain module: parse, preview, apply by the worker step."""

from __future__ import annotations

import io

import pytest

from accounts.models import Customer
from ledger import batches
from ledger.models import CorrectionBatch, CorrectionBatchRow, Event, PointTransaction, Stamp
from loyalty.audit import Channel
from tests.batches.conftest import csv_bytes

pytestmark = pytest.mark.django_db


def create(support, merchant, data: bytes, reason="bulk fix of the import"):
    return batches.create_batch(
        actor=support,
        channel=Channel.STAFF_API,
        merchant=merchant,
        reason=reason,
        file=io.BytesIO(data),
    )


def rows(batch):
    return {row.line: row for row in CorrectionBatchRow.objects.filter(batch=batch)}


def drain():
    while batches.run_due():
        pass


def test_every_kind_is_previewed_then_applied_once(support, merchant, ledger):
    data = csv_bytes(
        "kind,target,amount,reason",
        "adjust_points,M-1,5,",
        "adjust_balance,alice@example.com,-10,typo in the import",
        f"deduct_stamp,{ledger['stamp'].pk},,",
        f"cancel_balance_update,{ledger['credit'].pk},,",
        f"revert_points,{ledger['deduction'].pk},,",
        bom=True,
    )
    batch = create(support, merchant, data)
    assert (batch.status, batch.total, batch.ready, batch.invalid) == ("previewed", 5, 5, 0)
    assert batch.size == 5 + 10 + 1 + 20 + 30
    got = rows(batch)
    assert [(got[n].before, got[n].after) for n in range(2, 7)] == [
        (70, 75),
        (100, 90),
        (3, 2),
        (70, 50),
        (75, 105),  # cumulative: after the +5 of line 2
    ]
    # Nothing moved by the preview, and no event.
    assert Customer.objects.get(pk=ledger["alice"].pk).points == 70
    assert not Event.objects.filter(type__startswith="batch").exists()
    events_before = Event.objects.count()

    applied = batches.apply_batch(batch, support, channel=Channel.STAFF_API)
    assert applied.approval is None and applied.batch.status == "applying"
    drain()
    batch.refresh_from_db()
    assert (batch.status, batch.applied, batch.refused) == ("completed", 5, 0)
    alice = Customer.objects.get(pk=ledger["alice"].pk)
    bob = Customer.objects.get(pk=ledger["bob"].pk)
    assert (alice.points, alice.balance) == (105, 90)
    assert bob.balance == 50
    assert Stamp.objects.get(pk=ledger["stamp"].pk).count == 2
    got = rows(batch)
    assert {row.status for row in got.values()} == {"applied"}
    assert (got[6].before, got[6].after) == (75, 105)
    # Events as for single corrections, plus batch.completed.
    new = list(Event.objects.filter(pk__gt=0).order_by("id"))[events_before:]
    assert [e.type for e in new] == [
        "points.adjusted",
        "balance.adjusted",
        "stamp.removed",
        "balance.canceled",
        "points.reverted",
        "batch.completed",
    ]
    assert new[-1].data == {"batch": {"id": batch.pk, "total": 5, "applied": 5, "refused": 0}}
    assert new[0].actor_name == support.username and new[0].channel == "staff-api"
    assert new[0].request_id == f"batch-{batch.pk}:2"
    # History names the row's reason (or the batch's) and the batch.
    adjust = PointTransaction.objects.filter(kind="adjust", customer=alice).get()
    version = adjust.history.get()
    assert version.history_change_reason == "bulk fix of the import"
    assert version.request_id == f"batch-{batch.pk}:2"
    assert version.history_user == support


def test_invalid_rows_are_reported_and_never_applied(support, merchant, ledger):
    data = csv_bytes(
        "kind,target,amount,reason",
        "adjust_points,nobody,5,",
        "adjust_points,x@example.com,5,",  # another merchant's customer
        "adjust_points,M-1,five,",
        "adjust_points,M-1,0,",
        f"deduct_stamp,{ledger['stamp'].pk},3,",
        "refund,M-1,5,",
        "adjust_points,,5,",
        "adjust_points,M-1,5," + "r" * 501,
        "adjust_points,M-1,-1000,",  # the service refuses it in the preview
        "adjust_points,M-2,1,fine reason",
    )
    batch = create(support, merchant, data)
    got = rows(batch)
    assert (batch.total, batch.ready, batch.invalid) == (10, 1, 9)
    errors = {line: got[line].error_code for line in range(2, 11)}
    assert errors == {
        2: "not_found",
        3: "not_found",
        4: "invalid",
        5: "invalid",
        6: "invalid",
        7: "invalid",
        8: "invalid",
        9: "reason_required",
        10: "insufficient_points",
    }
    assert got[2].error == got[3].error  # no existence leak
    assert got[11].status == "ready" and batch.size == 1


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"kind,target\r\nadjust_points,\xff\xfe\r\n", 2),
        (b"target,amount\r\nM-1,5\r\n", 1),
        (b"kind,target,colour\r\nadjust_points,M-1,red\r\n", 1),
        (b"kind,target\r\nadjust_points,M-1,5\r\n", 2),
        (b"", 1),
    ],
)
def test_unparseable_files_are_refused_with_the_line_and_create_nothing(
    support, merchant, ledger, data, line
):
    with pytest.raises(batches.BatchParseError) as refused:
        create(support, merchant, data)
    assert refused.value.message.startswith(f"line {line}: ")
    assert not CorrectionBatch.objects.exists()
    assert not CorrectionBatchRow.objects.exists()


def test_json_rows(support, merchant, ledger):
    batch = batches.create_batch(
        actor=support,
        channel=Channel.STAFF_API,
        merchant=merchant,
        reason="from a script",
        rows=[
            {"kind": "adjust_points", "target": "M-1", "amount": 3},
            {"kind": "deduct_stamp", "target": ledger["stamp"].pk, "reason": "double stamp"},
        ],
    )
    got = rows(batch)
    assert (got[1].status, got[1].before, got[1].after) == ("ready", 70, 73)
    assert (got[2].status, got[2].reason) == ("ready", "double stamp")
