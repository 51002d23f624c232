"""Merchants, their stores, and customers (a person's membership in one merchant's program)."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from simple_history.models import HistoricalRecords

from loyalty.audit import AuditedHistoricalModel


def audit_history(**kwargs) -> HistoricalRecords:
    return HistoricalRecords(bases=[AuditedHistoricalModel], **kwargs)


class Merchant(models.Model):
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Store(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="stores")
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


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
    created = models.DateTimeField(auto_now_add=True)

    history = audit_history()

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

    def __str__(self) -> str:
        label = self.email or self.member_id or self.wallet_address or self.name
        return f"{label} (#{self.pk})"
