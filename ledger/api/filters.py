"""Query filters of the staff API lists. Invalid values are a 400, never a database error."""

from __future__ import annotations

import datetime as dt

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from accounts.models import Customer, Merchant, Store
from ledger.models import BalanceUpdate, PointTransaction, Stamp, StampCard
from partners.models import Partner

MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """An object id (a whole number; "1.5" or "abc" is a 400)."""

    field_class = IdField


class MomentField(IsoDateTimeField):
    """ISO 8601; a naive value is UTC. Refuses instants PostgreSQL cannot hold."""

    def clean(self, value):
        value = super().clean(value)
        if value is not None:
            try:
                utc = value.astimezone(dt.UTC)
            except (OverflowError, ValueError) as exc:
                raise forms.ValidationError(
                    "Enter a date and time between years 1 and 9999."
                ) from exc
            if not 1 <= utc.year <= 9999:
                raise forms.ValidationError("Enter a date and time between years 1 and 9999.")
            # PostgreSQL refuses offsets beyond +/-15:59 that Python accepts: send UTC.
            value = utc
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class MomentFilter(filters.IsoDateTimeFilter):
    field_class = MomentField


class CreatedFilterSet(filters.FilterSet):
    since = MomentFilter(
        field_name="created", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    until = MomentFilter(
        field_name="created", lookup_expr="lt", help_text="Created before (ISO 8601)."
    )


class MerchantFilter(CreatedFilterSet):
    class Meta:
        model = Merchant
        fields = ["since", "until"]


class StoreFilter(CreatedFilterSet):
    merchant = IdFilter(field_name="merchant_id")

    class Meta:
        model = Store
        fields = ["merchant", "since", "until"]


class StampCardFilter(CreatedFilterSet):
    merchant = IdFilter(field_name="merchant_id")

    class Meta:
        model = StampCard
        fields = ["merchant", "since", "until"]


class CustomerFilter(CreatedFilterSet):
    merchant = IdFilter(field_name="merchant_id")
    status = filters.CharFilter(max_length=40, help_text="Membership tier text, exact.")
    email = filters.CharFilter(method="filter_lowercase", max_length=254)
    member_id = filters.CharFilter(max_length=64)
    wallet_address = filters.CharFilter(method="filter_lowercase", max_length=64)

    class Meta:
        model = Customer
        fields = ["merchant", "status", "email", "member_id", "wallet_address", "since", "until"]

    def filter_lowercase(self, queryset, name, value):
        # Stored lowercase (README "Decisions"): match case-insensitively through the index.
        return queryset.filter(**{name: value.strip().lower()})


class StampFilter(CreatedFilterSet):
    merchant = IdFilter(field_name="merchant_id")
    customer = IdFilter(field_name="customer_id")
    card = IdFilter(field_name="card_id")
    active = filters.BooleanFilter()
    redeemed = filters.BooleanFilter()

    class Meta:
        model = Stamp
        fields = ["merchant", "customer", "card", "active", "redeemed", "since", "until"]


class BalanceUpdateFilter(CreatedFilterSet):
    merchant = IdFilter(field_name="merchant_id")
    customer = IdFilter(field_name="customer_id")
    store = IdFilter(field_name="store_id")
    status = filters.ChoiceFilter(choices=BalanceUpdate.Status.choices)
    effect = filters.ChoiceFilter(choices=BalanceUpdate.Effect.choices)

    class Meta:
        model = BalanceUpdate
        fields = ["merchant", "customer", "store", "status", "effect", "since", "until"]


class PointTransactionFilter(CreatedFilterSet):
    merchant = IdFilter(field_name="merchant_id")
    customer = IdFilter(field_name="customer_id")
    kind = filters.ChoiceFilter(choices=PointTransaction.Kind.choices)
    redemption_id = filters.CharFilter(max_length=100)
    partner_transaction_id = filters.CharFilter(max_length=40)

    class Meta:
        model = PointTransaction
        fields = [
            "merchant",
            "customer",
            "kind",
            "redemption_id",
            "partner_transaction_id",
            "since",
            "until",
        ]


class PartnerFilter(CreatedFilterSet):
    merchant = IdFilter(field_name="merchants", help_text="Partners allowed on this merchant.")
    active = filters.BooleanFilter()

    class Meta:
        model = Partner
        fields = ["merchant", "active", "since", "until"]
