"""Correction batches under concurrency, on PostgreSQL: concurrent `apply` calls apply a batch
once; a worker SIGKILLed mid-batch and restarted applies every ready row exactly once."""

from __future__ import annotations

import io
import signal

import pytest
from django.db import connection

from accounts.models import Customer
from ledger import batches
from ledger.models import CorrectionBatch, CorrectionBatchRow, PointTransaction
from loyalty.audit import Channel
from tests import factories
from tests.batches.conftest import StaffClient, csv_bytes, token_for
from tests.helpers import fund, run_concurrently
from tests.webhooks.test_worker_process import wait_for, worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: locks"),
]


def test_five_concurrent_applies_apply_once(support, merchant):
    customer = fund(factories.CustomerFactory(merchant=merchant, member_id="M-1"), points=10)
    batch = batches.create_batch(
        actor=support,
        channel=Channel.STAFF_API,
        merchant=merchant,
        reason="concurrent applies",
        file=io.BytesIO(csv_bytes("kind,target,amount", "adjust_points,M-1,5")),
    )
    token = token_for(support)

    def apply(i: int):
        response = StaffClient(token).post(f"correction-batches/{batch.pk}/apply/")
        return response.status_code, response.json().get("code")

    results = run_concurrently(5, apply)
    assert sorted(results, key=str) == [(202, None)] + [(409, "already_applied")] * 4, results
    while batches.run_due():
        pass
    assert Customer.objects.get(pk=customer.pk).points == 15
    assert CorrectionBatch.objects.get(pk=batch.pk).status == "completed"
    # Counted once toward the creator's day, as one correction of kind batch.
    from ledger.models import StaffDailyUsage

    usage = StaffDailyUsage.objects.get(user=support, kind="batch")
    assert (usage.count, usage.amount) == (1, 5)


def test_a_worker_killed_mid_batch_applies_every_row_once(support, merchant):
    customers = [
        fund(factories.CustomerFactory(merchant=merchant, member_id=f"K-{i}"), points=100)
        for i in range(40)
    ]
    lines = ["kind,target,amount"]
    for round_ in range(6):
        lines += [f"adjust_points,K-{i},{round_ + 1}" for i in range(40)]
    batch = batches.create_batch(
        actor=support,
        channel=Channel.STAFF_API,
        merchant=merchant,
        reason="killed worker",
        file=io.BytesIO(csv_bytes(*lines)),
    )
    assert batch.ready == 240
    batches.apply_batch(batch, support)
    rows = CorrectionBatchRow.objects.filter(batch=batch)
    env = {"BATCH_CHUNK": "4", "BATCH_PAUSE_SECONDS": "0.05"}

    first = worker(env=env)
    wait_for(lambda: rows.filter(status="applied").count() >= 40)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    left = rows.filter(status="ready").count()
    assert 0 < left <= 200  # killed mid-way

    second = worker("--burst", env=env)
    assert second.wait(180) == 0, second.stderr.read().decode()
    batch.refresh_from_db()
    assert (batch.status, batch.applied, batch.refused) == ("completed", 240, 0)
    for customer in customers:
        adjustments = PointTransaction.objects.filter(customer=customer, kind="adjust")
        assert sorted(adjustments.values_list("points", flat=True)) == [1, 2, 3, 4, 5, 6]
        assert Customer.objects.get(pk=customer.pk).points == 100 + 21
        versions = PointTransaction.history.filter(
            id__in=adjustments.values("id"), request_id__startswith=f"batch-{batch.pk}:"
        )
        assert versions.count() == 6
