"""Four-eyes approvals and staff limits (README: Approvals and staff limits).

`ApprovalPolicy` and `StaffLimit` say when a staff correction is held; `Approval` is a held
correction with its parameters and preview, decided once by a second person; never deleted.
`StaffDailyUsage` counts each user's applied corrections per kind and UTC day: the limits
are held by a conditional UPDATE of its row in the transaction of the correction.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Merchant, audit_history

ALL_KINDS = "*"  # a staff limit over every kind together


class Kind(models.TextChoices):
    DEDUCT_STAMP = "deduct_stamp", "Deduct a stamp"
    CANCEL_BALANCE_UPDATE = "cancel_balance_update", "Cancel a balance update"
    REVERT_POINTS = "revert_points", "Revert a point deduction"
    ADJUST_BALANCE = "adjust_balance", "Adjust a balance"
    ADJUST_POINTS = "adjust_points", "Adjust points"
    BATCH = "batch", "Correction batch"


LIMIT_KINDS = [(ALL_KINDS, "* (every kind)"), *Kind.choices]


class ApprovalPolicy(models.Model):
    """A correction of `kind` for `merchant` whose size is >= `threshold` needs approval."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    threshold = models.PositiveBigIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history(version_index=True)

    class Meta:
        ordering = ["merchant_id", "kind"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "kind"], name="approvalpolicy_one_per_kind"
            ),
            models.CheckConstraint(condition=Q(threshold__gte=1), name="approvalpolicy_threshold"),
        ]
        permissions = [("manage_approvalpolicy", "Can manage approval policies and staff limits")]

    def __str__(self) -> str:
        return f"{self.kind} >= {self.threshold} (merchant #{self.merchant_id})"


class StaffLimit(models.Model):
    """What `user` may apply without approval: per correction (`max_amount`) and per UTC day
    (`daily_amount`, the sum of sizes; `daily_count`); null is no limit. `kind` "*" counts
    every kind together."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=LIMIT_KINDS)
    max_amount = models.PositiveBigIntegerField(null=True, blank=True)
    daily_amount = models.PositiveBigIntegerField(null=True, blank=True)
    daily_count = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history(version_index=True)

    class Meta:
        ordering = ["user_id", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="stafflimit_one_per_kind"),
        ]
        permissions = [("manage_stafflimit", "Can manage staff limits")]

    def __str__(self) -> str:
        return f"Limit of user #{self.user_id} on {self.kind}"


class StaffDailyUsage(models.Model):
    """A user's applied corrections of `kind` (or "*": all) on one UTC day: their count and
    the sum of their sizes. Not audited: a counter, moved by conditional UPDATEs."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)
    amount = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "day"], name="staffdailyusage_key"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of user #{self.user_id} on {self.day}: {self.count}, {self.amount}"


class Approval(models.Model):
    """A held correction: applied through the same service when a second person approves."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELED = "canceled", "Canceled"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    # The corrected object: its model label ("ledger.stamp", "accounts.customer") and id.
    target_model = models.CharField(max_length=64)
    target_id = models.BigIntegerField()
    size = models.PositiveBigIntegerField()
    amount = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(max_length=16)
    # Why it was held: "policy", "max_amount", "daily_amount" or "daily_count".
    held_because = models.CharField(max_length=20, blank=True, default="")
    created = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True, default="")
    # Approved: the object the correction left and its effect; failed: the refusal's code and
    # message.
    result = models.JSONField(null=True, blank=True)
    # What it would do when requested: the value before and after.
    preview = models.JSONField(default=dict, blank=True)

    history = audit_history(version_index=True)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("add", "change", "view")  # never deleted
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending", decided_at__isnull=True)
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="approval_decided_iff_not_pending",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="approval_status_expiry"),
            models.Index(fields=["requested_by", "-id"], name="approval_requester"),
            models.Index(fields=["kind", "-id"], name="approval_kind"),
        ]
        permissions = [("approve_correction", "Can approve or reject a held correction")]

    def __str__(self) -> str:
        return f"Approval #{self.pk} ({self.kind}, {self.status})"
