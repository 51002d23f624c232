"""Approval events reach webhook receivers like any other: a held and approved correction
delivers approval.requested, the ledger event naming the approver, and approval.approved."""

from __future__ import annotations

import json

import pytest

from ledger import approvals, corrections
from ledger.models import ApprovalPolicy
from ledger.webhooks import worker
from loyalty.audit import Channel
from tests import factories
from tests.helpers import fund
from tests.webhooks.conftest import endpoint_factory, receiver, webhook_settings  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_held_then_approved_correction_is_delivered_in_order(receiver, endpoint_factory):  # noqa: F811
    customer = fund(factories.CustomerFactory(), points=50)
    endpoint_factory(receiver.url, merchant_id=customer.merchant_id)
    requester = factories.UserFactory(username="asker", is_superuser=True)
    approver = factories.UserFactory(username="checker", is_superuser=True)
    approvals.setting_save(
        ApprovalPolicy(),
        actor=None,
        channel=Channel.COMMAND,
        merchant=customer.merchant,
        kind="adjust_points",
        threshold=1,
    )
    held = approvals.submit(
        corrections.BY_KIND["adjust_points"],
        actor=requester,
        channel=Channel.STAFF_API,
        target=customer,
        reason="please add",
        amount=5,
    )
    approvals.approve(held.approval, actor=approver, channel=Channel.STAFF_API, reason="fine")
    worker.run(burst=True)
    # In the order they were written (deliveries run concurrently; only a customer's own
    # events are delivered in sequence).
    bodies = sorted((json.loads(r["body"]) for r in receiver.requests), key=lambda b: b["id"])
    delivered = [b["type"] for b in bodies if b["type"] != "points.credited"]
    assert delivered == ["approval.requested", "points.adjusted", "approval.approved"]
    requested, adjusted, approved = (b for b in bodies if b["type"] != "points.credited")
    assert requested["customer"] is None and requested["customer_sequence"] is None
    assert requested["data"]["approval"]["status"] == "pending"
    assert adjusted["actor"] == {"type": "staff", "name": "asker"}
    assert adjusted["data"]["approval"] == {
        "id": held.approval.pk,
        "approved_by": "checker",
        "reason": "fine",
    }
    assert approved["actor"] == {"type": "staff", "name": "checker"}
    assert approved["data"]["approval"]["decided_by"] == "checker"
