"""Merchants, their stores, and customers (a person's membership in one merchant's program)."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from simple_history.models import HistoricalRecords

from loyalty.audit import AuditedHistoricalModel


class AuditHistoricalRecords(HistoricalRecords):
    """simple-history's records, optionally with the index the audit log reads versions by.

    With `version_index`, the historical table is indexed on (id, history_id) instead of on
    id alone: finding the version before a given one ("the latest of this object below this
    history id") is then one index probe, however many versions the object has. With id
    alone PostgreSQL reads every version of the object, or walks the primary key backwards
    past every other object's versions; a customer gets a version per ledger move, so that
    made the audit log's CSV export crawl (200 rows/s). The composite index serves every
    lookup by id as well and costs no more to maintain than the one it replaces.
    """

    def __init__(self, *args, version_index: bool = False, indexes=(), **kwargs):
        self.version_index = version_index
        self.extra_indexes = tuple(indexes)
        if version_index:
            kwargs["no_db_index"] = [*kwargs.get("no_db_index", []), "id"]
        super().__init__(*args, **kwargs)

    def get_meta_options(self, model):
        options = super().get_meta_options(model)
        if self.version_index:
            index = models.Index(
                fields=["id", "history_id"], name=f"hist_{model._meta.model_name}_version"
            )
            options["indexes"] = (*options.get("indexes", ()), index)
        if self.extra_indexes:
            options["indexes"] = (*options.get("indexes", ()), *self.extra_indexes)
        return options


def audit_history(**kwargs) -> HistoricalRecords:
    """History of an audited model. Pass `version_index=True` (see `AuditHistoricalRecords`);
    every audited model has it. `indexes` adds indexes to the historical table."""
    return AuditHistoricalRecords(bases=[AuditedHistoricalModel], **kwargs)


class Merchant(models.Model):
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history(version_index=True)

    class Meta:
        ordering = ["id"]

    str_fields = ("name",)  # what __str__ reads: history loads only these to name many

    def __str__(self) -> str:
        return self.name or f"Merchant #{self.pk}"


class Store(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="stores")
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history(version_index=True)

    class Meta:
        ordering = ["id"]

    str_fields = ("name",)  # what __str__ reads (see Merchant.str_fields)

    def __str__(self) -> str:
        return self.name or f"Store #{self.pk}"


class Customer(models.Model):
    """A membership. `balance` and `points` are cached projections of the ledger rows."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="customers")
    email = models.CharField(max_length=254, blank=True, default="")
    member_id = models.CharField(max_length=64, blank=True, default="")
    wallet_address = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=40, default="Blue", help_text="Membership tier text.")
    balance = models.BigIntegerField(default=0, editable=False)
    points = models.BigIntegerField(default=0, editable=False)
    # How many ledger events the customer has had: the last event's customer_sequence.
    # Incremented under the row lock of every move; not history (it is the events' count).
    event_sequence = models.BigIntegerField(default=0, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history(version_index=True, excluded_fields=["event_sequence"])

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="customer_balance_gte_0"),
            models.CheckConstraint(condition=Q(points__gte=0), name="customer_points_gte_0"),
            models.CheckConstraint(
                condition=Q(email=Lower("email")), name="customer_email_lowercase"
            ),
            models.CheckConstraint(
                condition=Q(wallet_address=Lower("wallet_address")),
                name="customer_wallet_lowercase",
            ),
            models.UniqueConstraint(
                fields=["merchant", "email"],
                condition=~Q(email=""),
                name="customer_unique_email_per_merchant",
            ),
            models.UniqueConstraint(
                fields=["merchant", "member_id"],
                condition=~Q(member_id=""),
                name="customer_unique_member_id_per_merchant",
            ),
            models.UniqueConstraint(
                fields=["merchant", "wallet_address"],
                condition=~Q(wallet_address=""),
                name="customer_unique_wallet_per_merchant",
            ),
        ]
        # Staff search across merchants (the unique indexes lead with the merchant).
        indexes = [
            models.Index(fields=["email"], name="customer_email"),
            models.Index(fields=["member_id"], name="customer_member_id"),
            models.Index(fields=["wallet_address"], name="customer_wallet"),
        ]
        permissions = [
            ("adjust_balance_customer", "Can adjust a customer's balance (correction)"),
            ("adjust_points_customer", "Can adjust a customer's points (correction)"),
        ]

    # What __str__ reads (see Merchant.str_fields).
    str_fields = ("email", "member_id", "wallet_address", "name")

    def __str__(self) -> str:
        """What a person knows the customer by: email, else member id, wallet, name."""
        label = self.email or self.member_id or self.wallet_address or self.name
        return label or f"Customer #{self.pk}"
