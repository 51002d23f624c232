"""Serializers of the staff API: outputs (`<Entity>Serializer`) and inputs (`...InputSerializer`).

Outputs are read-only renderings; inputs only parse. Every write goes through a service.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Customer, Merchant, Store
from ledger.api.fields import (
    ContractIntegerField,
    TextField,
    preview_field,
    reason_field,
)
from ledger.history import AUDITED_MODELS
from ledger.models import (
    MAX_AMOUNT,
    Approval,
    BalanceUpdate,
    PointTransaction,
    Stamp,
    StampCard,
)
from ledger.models.approvals import Kind
from loyalty.audit import Channel
from partners.models import Partner

# --- outputs -------------------------------------------------------------------------------


class MerchantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Merchant
        fields = ["id", "name", "created"]
        read_only_fields = fields


class StoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["id", "merchant", "name", "created"]
        read_only_fields = fields


class StampCardSerializer(serializers.ModelSerializer):
    class Meta:
        model = StampCard
        fields = ["id", "merchant", "name", "max_stamps", "created"]
        read_only_fields = fields


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "merchant",
            "email",
            "member_id",
            "wallet_address",
            "name",
            "status",
            "balance",
            "points",
            "created",
        ]
        read_only_fields = fields


class StampSerializer(serializers.ModelSerializer):
    class Meta:
        model = Stamp
        fields = [
            "id",
            "card",
            "customer",
            "merchant",
            "count",
            "max_stamps",
            "active",
            "redeemed",
            "start_date",
            "end_date",
            "memo",
            "deleted_at",
            "created",
        ]
        read_only_fields = fields


class BalanceUpdateSerializer(serializers.ModelSerializer):
    canceled_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of the staff user who canceled.",
    )

    class Meta:
        model = BalanceUpdate
        fields = [
            "id",
            "customer",
            "merchant",
            "store",
            "type",
            "effect",
            "amount",
            "status",
            "balance_after",
            "reason",
            "created",
            "canceled_at",
            "canceled_by",
            "cancel_reason",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "amount": {"help_text": "Always positive; `effect` says credit or debit."},
            "store": {"help_text": "Null for staff adjustments."},
        }


class PointTransactionSerializer(serializers.ModelSerializer):
    reverted_by = serializers.SerializerMethodField(
        help_text="Id of the revert of this deduction, if it was reverted."
    )

    class Meta:
        model = PointTransaction
        fields = [
            "id",
            "customer",
            "merchant",
            "partner",
            "kind",
            "points",
            "points_after",
            "redemption_id",
            "partner_transaction_id",
            "reverts",
            "reverted_by",
            "reason",
            "created",
            "confirmation_status",
            "needs_attention",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "points": {
                "help_text": "Signed, as stored: a deduction (and a negative adjustment) is "
                "negative; a credit, a revert or a positive adjustment is positive."
            },
            "points_after": {"help_text": "The customer's points right after this row."},
            "reverts": {"help_text": "For a revert: the id of the deduction it gives back."},
        }

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_reverted_by(self, obj) -> int | None:
        try:
            return obj.reverted_by.pk
        except ObjectDoesNotExist:
            return None


class PartnerSerializer(serializers.ModelSerializer):
    """Never a credential: no API key (hash or prefix), no HMAC key, no HMAC secret."""

    class Meta:
        model = Partner
        fields = [
            "id",
            "name",
            "primary_merchant",
            "merchants",
            "chain",
            "errors_as_200",
            "active",
            "created",
        ]
        read_only_fields = fields


# Results of corrections. In a preview nothing is written, so a new row has no id yet.


class BalanceUpdateResultSerializer(BalanceUpdateSerializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null in a preview.")


class PointTransactionResultSerializer(PointTransactionSerializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null in a preview.")
    partner_transaction_id = serializers.CharField(allow_null=True, help_text="Null in a preview.")


class CustomerBalanceAdjustedSerializer(CustomerSerializer):
    balance_update = BalanceUpdateResultSerializer(help_text="The new ledger row.")

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "balance_update"]
        read_only_fields = fields


class CustomerPointsAdjustedSerializer(CustomerSerializer):
    point_transaction = PointTransactionResultSerializer(help_text="The new ledger row.")

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "point_transaction"]
        read_only_fields = fields


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class VersionSerializer(serializers.Serializer):
    """One historical version: who, when, through which channel, why, before and after."""

    model = serializers.CharField()
    object_id = serializers.IntegerField()
    history_id = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    history_type = serializers.ChoiceField(
        choices=["+", "~", "-"], help_text='"+" created, "~" changed, "-" deleted.'
    )
    actor = serializers.CharField(help_text='Username, partner name, or "system".')
    channel = serializers.CharField()
    operation = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    request_id = serializers.CharField(allow_blank=True)
    changes = ChangeSerializer(many=True)
    approved_by = serializers.CharField(
        allow_null=True, help_text="Who approved the change (a held correction), or null."
    )
    approval = serializers.IntegerField(allow_null=True, help_text="The approval's id, or null.")
    approval_reason = serializers.CharField(
        allow_null=True, help_text="The approver's reason, or null."
    )


class AuditLogPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="URL of the next (older) page.")
    results = VersionSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable.")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per-field messages (validation errors); empty otherwise.",
    )


# --- inputs --------------------------------------------------------------------------------


class MerchantRefField(ContractIntegerField):
    """A merchant's id; resolves to the Merchant (a 400 when there is none)."""

    default_error_messages = {
        **ContractIntegerField.default_error_messages,
        "does_not_exist": "No merchant with this id.",
    }

    def to_internal_value(self, data) -> Merchant:
        merchant = Merchant.objects.filter(pk=super().to_internal_value(data)).first()
        if merchant is None:
            self.fail("does_not_exist")
        return merchant


class StampCardInputSerializer(serializers.Serializer):
    merchant = MerchantRefField()
    name = TextField(max_length=200)
    max_stamps = ContractIntegerField(min_value=1, max_value=10000)


class CustomerInputSerializer(serializers.Serializer):
    """Identity fields. A customer needs at least one of email, member_id, wallet_address.
    `merchant` is required on create and cannot change afterwards."""

    merchant = MerchantRefField()
    email = TextField(max_length=254, required=False, allow_blank=True)
    member_id = TextField(max_length=64, required=False, allow_blank=True)
    wallet_address = TextField(max_length=64, required=False, allow_blank=True)
    name = TextField(max_length=200, required=False, allow_blank=True)
    status = TextField(max_length=40, required=False, help_text="Membership tier text.")

    def validate_email(self, value: str) -> str:
        if value:
            try:
                validate_email(value)
            except DjangoValidationError:
                raise serializers.ValidationError("Enter a valid email address.") from None
        return value


class ReasonInputSerializer(serializers.Serializer):
    reason = reason_field()
    preview = preview_field()


class AdjustInputSerializer(serializers.Serializer):
    amount = ContractIntegerField(
        min_value=-MAX_AMOUNT,
        max_value=MAX_AMOUNT,
        nonzero=True,
        help_text="Signed, non-zero: positive adds, negative takes away (never below 0).",
    )
    reason = reason_field()
    preview = preview_field()


class AuditLogQuerySerializer(serializers.Serializer):
    """Query parameters of the audit log."""

    since = serializers.DateTimeField(required=False, help_text="At or after (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Before (ISO 8601).")
    actor = serializers.CharField(required=False, max_length=150, help_text="Username or partner.")
    channel = serializers.ChoiceField(required=False, choices=Channel.values)
    model = serializers.ChoiceField(required=False, choices=sorted(AUDITED_MODELS))
    merchant = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    q = serializers.CharField(required=False, max_length=500, help_text="Text in the reason.")
    cursor = serializers.CharField(required=False, max_length=1000)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
    format = serializers.ChoiceField(required=False, choices=["json", "csv"], default="json")


# --- approvals (README: Approvals and staff limits) ----------------------------------------


class ApprovalTargetSerializer(serializers.Serializer):
    model = serializers.CharField(help_text='"ledger.stamp", "accounts.customer", ...')
    id = serializers.IntegerField()


class ApprovalSerializer(serializers.Serializer):
    """A held correction (`ledger.approvals.serialize` renders it)."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Approval.Status.choices)
    kind = serializers.ChoiceField(choices=Kind.choices)
    merchant = serializers.IntegerField()
    target = ApprovalTargetSerializer()
    size = serializers.IntegerField()
    amount = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    requested_by = serializers.CharField()
    channel = serializers.CharField()
    held_because = serializers.CharField(
        help_text="policy, max_amount, daily_amount or daily_count"
    )
    created = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField(allow_null=True)
    result = serializers.JSONField(
        allow_null=True,
        help_text="approved: {model, id, field, before, after, object}; failed: {code, message}",
    )
    preview = serializers.JSONField(help_text="{model, id, field, before, after}")


class ApprovalEnvelopeSerializer(serializers.Serializer):
    approval = ApprovalSerializer()
