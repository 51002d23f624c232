"""Bulk corrections from a file (README: Bulk corrections).

A `CorrectionBatch` is a file of corrections of one merchant, parsed and previewed row by row
by the real services, then applied once by the worker. Its `CorrectionBatchRow`s hold what
each line asks (kind, target, amount, reason), what it resolved to, and what happened to it:
`ready` or `invalid` after the preview, `applied` or `refused` after the worker. A row is
marked applied in the same transaction as its ledger move, so no row is applied twice.

The batch is audited (history, the audit log); its rows are its data, written in bulk (they
are not audited models of their own: every applied row leaves the ledger's own history rows,
whose request id names the batch and the line).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.template.defaultfilters import pluralize

from accounts.models import Merchant, audit_history


def counted_rows(count: int, kind: str = "") -> str:
    """ "1 row", "2 ready rows": a count of a batch's rows as its pages and messages say it."""
    return " ".join(filter(None, [str(count), kind, f"row{pluralize(count)}"]))


class CorrectionBatch(models.Model):
    class Status(models.TextChoices):
        PREVIEWED = "previewed", "Previewed"
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPLYING = "applying", "Applying"
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # The channel it was uploaded through: its rows are applied through it, as its creator.
    channel = models.CharField(max_length=16)
    source = models.CharField(max_length=8, default="csv")  # "csv" or "json"
    filename = models.CharField(max_length=255, blank=True, default="")
    created = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREVIEWED)
    total = models.PositiveIntegerField(default=0)
    ready = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    # Set when the worker completes the batch (while applying, the rows are counted).
    applied = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    # The batch's size for approvals and limits: the sum of its ready rows' sizes.
    size = models.PositiveBigIntegerField(default=0)
    approval = models.ForeignKey(
        "ledger.Approval", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    apply_requested_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    history = audit_history(version_index=True)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("add", "view")  # never edited by hand, never deleted
        verbose_name_plural = "correction batches"
        indexes = [
            models.Index(
                fields=["status", "id"],
                condition=Q(status__in=["applying", "pending_approval"]),
                name="correctionbatch_due",
            ),
            models.Index(fields=["created_by", "-id"], name="correctionbatch_creator"),
            models.Index(fields=["merchant", "-id"], name="correctionbatch_merchant"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ready__lte=models.F("total")), name="correctionbatch_ready_lte_total"
            ),
        ]

    str_related = ("merchant",)  # what __str__ reads (see ledger.models.Stamp.str_related)
    str_fields = ("total", "status", "merchant__name")

    def __str__(self) -> str:
        """E.g. "Correction batch #3 of 120 rows at Bean Bar (completed)"."""
        return (
            f"Correction batch #{self.pk} of {counted_rows(self.total)} at {self.merchant} "
            f"({self.get_status_display().lower()})"
        )


class CorrectionBatchRow(models.Model):
    class Status(models.TextChoices):
        READY = "ready", "Ready"
        INVALID = "invalid", "Invalid"
        APPLIED = "applied", "Applied"
        REFUSED = "refused", "Refused"

    id = models.BigAutoField(primary_key=True)
    batch = models.ForeignKey(CorrectionBatch, on_delete=models.PROTECT, related_name="rows")
    # The file's line (the header is line 1) or, for JSON rows, the position from 1.
    line = models.PositiveIntegerField()
    # As given (cut to the column's length); an unknown kind is kept to be reported.
    kind = models.CharField(max_length=40)
    target = models.CharField(max_length=255)
    amount = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    # What the target resolved to within the batch's merchant.
    target_id = models.BigIntegerField(null=True, blank=True)
    # The value the row moves, as one key: customer id * 4 + 0 (balance) or + 1 (points), or
    # stamp id * 4 + 2. Rows of different subjects do not affect each other, so the preview
    # may run them subject by subject (each in line order).
    subject = models.BigIntegerField(null=True, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices)
    before = models.BigIntegerField(null=True, blank=True)
    after = models.BigIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # Applied: the ledger row the service answered (the stamp, the update, the new row).
    result_id = models.BigIntegerField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch_id", "line"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["batch", "line"], name="correctionbatchrow_line"),
            models.CheckConstraint(
                condition=Q(status__in=["ready", "invalid", "applied", "refused"]),
                name="correctionbatchrow_status",
            ),
        ]
        indexes = [
            models.Index(fields=["batch", "status", "line"], name="correctionbatchrow_by_status"),
            models.Index(
                fields=["batch", "subject", "line"],
                condition=Q(status="ready"),
                name="correctionbatchrow_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"Row {self.line} of batch #{self.batch_id} ({self.status})"
