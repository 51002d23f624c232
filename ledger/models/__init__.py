"""The ledger: stamp cards and stamps, balance updates, point transactions.

Counts and balances are cached projections: `Stamp.count` of the stamp's history,
`Customer.balance` of its successful balance updates, `Customer.points` of its point
transactions. Only `ledger.services` writes these models; the database rejects anything
that would break an invariant (CHECK and UNIQUE constraints here, triggers in migrations).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Customer, Merchant, Store, audit_history
from loyalty.db import CoveringIndex
from loyalty.http.limits import MAX_AMOUNT


def corrections_index(name: str) -> models.Index:
    """On a historical table: its corrections by kind and time, with who and why, answered from
    the index alone (the dashboard counts them per day, reason and actor)."""
    return CoveringIndex(
        fields=["operation", "history_date"],
        include=["history_change_reason", "history_user"],
        name=name,
    )


class StampCard(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="stamp_cards")
    name = models.CharField(max_length=200)
    max_stamps = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history(version_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_stamps__gte=1) & Q(max_stamps__lte=10000),
                name="stampcard_max_stamps_range",
            ),
        ]

    str_fields = ("name",)  # what __str__ reads (see accounts.models.Merchant.str_fields)

    def __str__(self) -> str:
        return self.name or f"Stamp card #{self.pk}"


class Stamp(models.Model):
    """One customer's card. `max_stamps` is copied from the card so the database can check it."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    card = models.ForeignKey(StampCard, on_delete=models.PROTECT, related_name="stamps")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="stamps")
    count = models.IntegerField(default=0)
    max_stamps = models.PositiveIntegerField()
    start_date = models.DateField()
    end_date = models.DateField()
    active = models.BooleanField(default=True)
    redeemed = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    memo = models.CharField(max_length=500, blank=True, default="")
    # What a Vivoldi client sends about its own user; informative only.
    external_user_id = models.CharField(max_length=100, blank=True, default="")
    external_user_name = models.CharField(max_length=100, blank=True, default="")
    external_user_phone = models.CharField(max_length=40, blank=True, default="")
    external_user_email = models.CharField(max_length=254, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history(
        version_index=True, indexes=[corrections_index("hist_stamp_corrections")]
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(count__gte=0), name="stamp_count_gte_0"),
            models.CheckConstraint(
                condition=Q(count__lte=F("max_stamps")), name="stamp_count_lte_max"
            ),
            models.CheckConstraint(
                condition=Q(start_date__lte=F("end_date")), name="stamp_dates_ordered"
            ),
        ]
        indexes = [models.Index(fields=["merchant", "id"], name="stamp_merchant_id")]
        permissions = [("remove_stamp", "Can remove a stamp (correction)")]

    # The relations __str__ reads (the admin selects them with the object: ledger.admin.base)
    # and its own fields (history loads only these to name many objects: ledger.history.names).
    str_related = ("card", "customer")
    str_fields = ("count", "max_stamps")

    def __str__(self) -> str:
        """E.g. "Coffee card of alice@example.com, 3/10" (reads the card and the customer:
        lists select them)."""
        return f"{self.card} of {self.customer}, {self.count}/{self.max_stamps}"


class BalanceUpdate(models.Model):
    """A credit or a debit of a customer's balance. A cancel changes only its status, once."""

    class Effect(models.TextChoices):
        CREDIT = "credit", "Credit"
        DEBIT = "debit", "Debit"

    class Status(models.TextChoices):
        SUCCESS = "Success", "Success"
        CANCELED = "Canceled", "Canceled"

    TYPE_STAMPS = "stamps"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="balance_updates")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    # Null for staff adjustments, which happen at no store.
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    type = models.CharField(max_length=20, default=TYPE_STAMPS)
    effect = models.CharField(max_length=6, choices=Effect.choices)
    amount = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.SUCCESS)
    balance_after = models.BigIntegerField()
    reason = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    canceled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancel_reason = models.TextField(blank=True, default="")

    history = audit_history(version_index=True, indexes=[corrections_index("hist_bu_corrections")])

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=1) & Q(amount__lte=MAX_AMOUNT),
                name="balanceupdate_amount_range",
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="balanceupdate_balance_after_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(effect__in=["credit", "debit"]), name="balanceupdate_effect_valid"
            ),
            models.CheckConstraint(
                condition=(Q(status="Success") & Q(canceled_at__isnull=True))
                | (Q(status="Canceled") & Q(canceled_at__isnull=False)),
                name="balanceupdate_canceled_iff_canceled_at",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "id"], name="balanceupdate_customer_id"),
            models.Index(fields=["merchant", "id"], name="balanceupdate_merchant_id"),
            # The admin's status filter: canceled updates are few, so a partial index.
            models.Index(
                fields=["-id"], condition=Q(status="Canceled"), name="balanceupdate_canceled"
            ),
        ]
        permissions = [("cancel_balanceupdate", "Can cancel a balance update (correction)")]

    str_related = ("customer",)  # what __str__ reads (see Stamp.str_related)
    str_fields = ("effect", "amount", "status")

    def __str__(self) -> str:
        """E.g. "Credit of 500 to alice@example.com", "Debit of 200 from bob (canceled)"
        (reads the customer: lists select it)."""
        direction = "to" if self.effect == self.Effect.CREDIT else "from"
        text = f"{self.get_effect_display()} of {self.amount} {direction} {self.customer}"
        return text + " (canceled)" if self.status == self.Status.CANCELED else text

    @property
    def signed_amount(self) -> int:
        return self.amount if self.effect == self.Effect.CREDIT else -self.amount


class PointTransaction(models.Model):
    """An append-only movement of points; `points` is signed (a deduction is negative)."""

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit"
        DEDUCT = "deduct", "Deduction"
        REVERT = "revert", "Revert of a deduction"
        ADJUST = "adjust", "Adjustment"

    class Confirmation(models.TextChoices):
        NONE = "", "Not confirmed"
        CLAIMED = "claimed", "Claimed"
        REVERTED = "reverted", "Reverted"

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="point_transactions"
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=6, choices=Kind.choices)
    points = models.BigIntegerField()
    points_after = models.BigIntegerField()
    redemption_id = models.CharField(max_length=100, blank=True, default="")
    partner_transaction_id = models.CharField(max_length=40, unique=True)
    reverts = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reverted_by"
    )
    reason = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    # Outcome reported by the partner through /confirm-redemption; moves no points.
    confirmation_status = models.CharField(
        max_length=8, choices=Confirmation.choices, blank=True, default=""
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    usd_amount = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    ygg_amount = models.DecimalField(max_digits=40, decimal_places=18, null=True, blank=True)
    price_ygg_usd = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    txn_confirmed = models.BooleanField(null=True, blank=True)
    txn_hash = models.CharField(max_length=100, blank=True, default="")
    initial_at = models.DateTimeField(null=True, blank=True)
    pending_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)
    needs_attention = models.BooleanField(default=False)

    history = audit_history(version_index=True, indexes=[corrections_index("hist_pt_corrections")])

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(points_after__gte=0), name="pointtransaction_points_after_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(points__gte=-MAX_AMOUNT) & Q(points__lte=MAX_AMOUNT),
                name="pointtransaction_points_range",
            ),
            models.CheckConstraint(
                condition=(Q(kind="deduct") & Q(points__lt=0) & ~Q(redemption_id=""))
                | (Q(kind__in=["credit", "revert"]) & Q(points__gt=0))
                | (Q(kind="adjust") & ~Q(points=0)),
                name="pointtransaction_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind="revert", reverts__isnull=False)
                | (~Q(kind="revert") & Q(reverts__isnull=True)),
                name="pointtransaction_revert_points_at_original",
            ),
            # A redemption id is deducted at most once per credential.
            models.UniqueConstraint(
                fields=["partner", "redemption_id"],
                condition=Q(kind="deduct"),
                name="pointtransaction_one_deduction_per_redemption",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "id"], name="pointtxn_customer_id"),
            models.Index(fields=["merchant", "id"], name="pointtxn_merchant_id"),
            models.Index(fields=["kind", "-id"], name="pointtxn_kind_id"),
            models.Index(
                fields=["-id"], condition=Q(needs_attention=True), name="pointtxn_needs_attention"
            ),
            # The dashboard's settlement view: deductions and reverts per partner in a window.
            CoveringIndex(
                fields=["created"],
                include=["partner", "kind", "points"],
                condition=Q(kind__in=["deduct", "revert"]),
                name="pointtxn_settlement",
            ),
        ]
        permissions = [
            ("revert_pointtransaction", "Can revert a point deduction (correction)"),
        ]

    str_related = ("customer",)  # what __str__ reads (see Stamp.str_related)
    str_fields = ("kind", "points")

    def __str__(self) -> str:
        """E.g. "Deduction of 300 points from alice@example.com", "Credit of 50 points to bob",
        "Adjustment of -20 points for carol" (reads the customer: lists select it)."""
        if self.kind == self.Kind.ADJUST:
            return f"Adjustment of {self.points:+d} points for {self.customer}"
        noun = {self.Kind.DEDUCT: "Deduction", self.Kind.REVERT: "Revert"}.get(self.kind, "Credit")
        direction = "from" if self.points < 0 else "to"
        return f"{noun} of {abs(self.points)} points {direction} {self.customer}"


class Event(models.Model):
    """One committed change of value, as the outside world hears of it (the outbox).

    Written by the service in the transaction of its change, so it exists if and only if the
    change committed. `txid` is the writing transaction's id (`pg_current_xact_id()`, set by a
    trigger on PostgreSQL, null on SQLite): the feed hands out only events of transactions
    older than every one still in flight, ordered by (txid, id), so a cursor never passes an
    event that commits later. `customer_sequence` counts the customer's ledger events 1, 2,
    3, ... in commit order (taken from `Customer.event_sequence` under its row lock).
    """

    class ActorType(models.TextChoices):
        STAFF = "staff", "Staff"
        PARTNER = "partner", "Partner"
        SYSTEM = "system", "System"

    id = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=40)
    created = models.DateTimeField()
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    customer_sequence = models.BigIntegerField(null=True, blank=True)
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    actor_name = models.CharField(max_length=200)
    channel = models.CharField(max_length=16)
    # Null, not "", when there is none: the wire says null and the columns say it too.
    reason = models.TextField(null=True, blank=True)  # noqa: DJ001
    request_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    data = models.JSONField()
    txid = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["txid", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "customer_sequence"], name="event_one_per_customer_sequence"
            ),
            models.CheckConstraint(
                condition=Q(customer__isnull=True, customer_sequence__isnull=True)
                | Q(customer__isnull=False, customer_sequence__gte=1),
                name="event_sequence_iff_customer",
            ),
        ]
        indexes = [
            models.Index(fields=["txid", "id"], name="event_feed"),
            models.Index(fields=["merchant", "txid", "id"], name="event_merchant_feed"),
            models.Index(fields=["type", "txid", "id"], name="event_type_feed"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


# Four-eyes approvals and staff limits, correction batches (bulk corrections from a file),
# webhook endpoints and deliveries: their own modules of this models package.
from ledger.models.approvals import (  # noqa: E402, F401
    Approval,
    ApprovalPolicy,
    StaffDailyUsage,
    StaffLimit,
)
from ledger.models.batches import CorrectionBatch, CorrectionBatchRow  # noqa: E402, F401
from ledger.models.webhooks import WebhookDelivery, WebhookEndpoint, WorkerCursor  # noqa: E402, F401
