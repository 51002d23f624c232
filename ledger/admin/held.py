"""Why a correction is held for approval, in words (`Approval.held_because` is a code)."""

from __future__ import annotations

from ledger.models import ApprovalPolicy

WHY = {
    "policy": "the merchant's policy holds {kind} of size {threshold} or more",
    "max_amount": "bigger than the requester's staff limit per correction",
    "daily_amount": "beyond the requester's staff limit of amount per day (UTC)",
    "daily_count": "beyond the requester's staff limit of corrections per day (UTC)",
}


def held_why(approval) -> str:
    """A sentence for the admin: which rule holds `approval` (its size named)."""
    threshold = ""
    if approval.held_because == "policy":
        policy = ApprovalPolicy.objects.filter(
            merchant_id=approval.merchant_id, kind=approval.kind
        ).first()
        threshold = policy.threshold if policy is not None else "?"
    text = WHY.get(approval.held_because, approval.held_because or "needs approval")
    return f"{text.format(kind=approval.kind, threshold=threshold)}; this one: {approval.size}"
