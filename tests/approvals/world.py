"""One of each approvals object, for tests that aim at existing objects (the schema fuzzer)."""

from __future__ import annotations

from ledger import approvals, corrections
from ledger.models import ApprovalPolicy, StaffLimit
from loyalty.audit import Channel


def approval_world(world: dict, requester) -> dict:
    """A policy holding every points adjustment of the world's merchant, a limit of the
    requester, and one pending request of theirs."""
    staff = {"actor": requester, "channel": Channel.STAFF_API}
    policy = approvals.setting_save(
        ApprovalPolicy(), **staff, merchant=world["merchant"], kind="adjust_points", threshold=1
    )
    limit = approvals.setting_save(StaffLimit(), **staff, user=requester, kind="*", daily_count=50)
    held = approvals.submit(
        corrections.BY_KIND["adjust_points"],
        **staff,
        target=world["customer"],
        amount=1,
        reason="held for the world",
    )
    return {"approval_policy": policy, "staff_limit": limit, "approval": held.approval}
