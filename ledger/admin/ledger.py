"""Admin pages for the ledger: read-only rows, corrective actions, no delete anywhere.

Ledger rows are immutable here (amounts, owners and balances-after are never editable, as
the database triggers also insist); the only writes are the corrections, each through its
service, and the creation of a stamp card.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ledger import history, services
from ledger.admin.accounts import MAX_ID_DIGITS, customer_q
from ledger.admin.base import (
    BackOfficeAdmin,
    admin_link,
    changelist_link,
    truncated,
    with_after,
)
from ledger.admin.corrections import CorrectionsMixin
from ledger.models import BalanceUpdate, PointTransaction, Stamp, StampCard
from loyalty.audit import Channel


class ReadOnlyLedgerAdmin(BackOfficeAdmin):
    """Every field read-only for everyone, superusers included; search on indexed columns."""

    search_fields = ["=id"]  # shows the search box; get_search_results does the work
    search_help_text = "Exact id, or a customer's email, member id or wallet address."
    sortable_by = ["id", "created_display"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def search_q(self, term: str) -> Q:
        q = Q(customer__in=self.customer_ids(term))
        if term.isdigit() and len(term) <= MAX_ID_DIGITS:
            q |= Q(pk=int(term))
        return q

    @staticmethod
    def customer_ids(term: str):
        from accounts.models import Customer

        return Customer.objects.filter(customer_q(term)).values("pk")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(self.search_q(term)), False

    @admin.display(description="Customer", ordering="customer_id")
    def customer_link(self, obj):
        return admin_link(obj.customer, truncated(obj.customer, "s"))

    @admin.display(description="Merchant", ordering="merchant_id")
    def merchant_link(self, obj):
        return admin_link(obj.merchant, truncated(obj.merchant.name, "s"))


@admin.register(StampCard)
class StampCardAdmin(BackOfficeAdmin):
    list_display = ["id", "name", "merchant_link", "max_stamps", "created_display", "stamps_link"]
    list_display_links = ["id", "name"]
    list_filter = ["merchant"]
    list_select_related = ["merchant"]
    search_fields = ["name"]
    autocomplete_fields = ["merchant"]
    sortable_by = ["id", "name", "created_display"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["merchant", "name", "max_stamps"]
        return ["id", "merchant", "name", "max_stamps", "created", "stamps_link"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a card's merchant and maximum are frozen; no service renames it

    def call_service(self, request, form, change):
        return services.stamp_card_create(
            actor=request.user,
            channel=Channel.ADMIN,
            merchant=form.cleaned_data["merchant"],
            name=form.cleaned_data["name"],
            max_stamps=form.cleaned_data["max_stamps"],
        )

    @admin.display(description="Merchant", ordering="merchant_id")
    def merchant_link(self, obj):
        return admin_link(obj.merchant, truncated(obj.merchant.name, "m"))

    @admin.display(description="Stamps")
    def stamps_link(self, obj):
        return changelist_link(Stamp, "stamps →", card__id__exact=obj.pk)


@admin.register(Stamp)
class StampAdmin(CorrectionsMixin, ReadOnlyLedgerAdmin):
    # The merchant is a filter; the flags are one state; the dates one validity period.
    list_display = [
        "id",
        "customer_link",
        "card_link",
        "count_display",
        "state",
        "validity",
        "created_display",
    ]
    list_filter = ["merchant"]
    list_select_related = ["customer", "card", "merchant"]
    raw_id_fields = ["merchant", "card", "customer"]
    fields = [
        "id",
        "customer",
        "card",
        "merchant",
        "count",
        "max_stamps",
        "active",
        "redeemed",
        "deleted_at",
        "start_date",
        "end_date",
        "memo",
        "external_user_id",
        "external_user_name",
        "external_user_phone",
        "external_user_email",
        "created",
    ]

    @admin.display(description="Card", ordering="card_id")
    def card_link(self, obj):
        return admin_link(obj.card, truncated(obj.card.name, "s"))

    @admin.display(description="Count")
    def count_display(self, obj):
        return f"{obj.count}/{obj.max_stamps}"

    @admin.display(description="State")
    def state(self, obj):
        """Deleted, redeemed, inactive or active: the flags of the object page in one word."""
        if obj.deleted_at:
            return format_html(
                '<span title="{}">deleted</span>', f"deleted {obj.deleted_at:%Y-%m-%d %H:%M}"
            )
        if obj.redeemed:
            return "redeemed"
        return "active" if obj.active else "inactive"

    @admin.display(description="Valid")
    def validity(self, obj):
        return format_html(
            '<span class="nowrap">{}</span> &ndash; <span class="nowrap">{}</span>',
            obj.start_date or "…",
            obj.end_date or "…",
        )


@admin.register(BalanceUpdate)
class BalanceUpdateAdmin(CorrectionsMixin, ReadOnlyLedgerAdmin):
    # The merchant, store and cancel details are on the object page (merchant and status
    # are filters); the sign of the amount says credit or debit.
    list_display = [
        "id",
        "customer_link",
        "signed_amount_display",
        "status",
        "reason_or_cancel_reason",
        "created_display",
    ]
    # Filters on indexed columns only (merchant: (merchant, id); status: the partial index
    # of canceled updates; created: its own index).
    list_filter = ["merchant", "status", "created"]
    list_select_related = ["customer", "merchant", "store"]
    raw_id_fields = ["customer", "merchant", "store", "canceled_by"]
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
        "cancellation",
    ]

    @admin.display(description="Canceled")
    def cancellation(self, obj):
        """Who canceled it, when, through which channel unless the admin, and why."""
        if obj.status != BalanceUpdate.Status.CANCELED:
            return "-"
        version = _version_of(BalanceUpdate, obj.pk, "balance_update_cancel")
        # The canceling user, linked for those who may open the user admin (superusers).
        by = (
            admin_link(obj.canceled_by, obj.canceled_by.get_username()) if obj.canceled_by else None
        )
        return _correction_text("Canceled", version, obj.canceled_at, obj.cancel_reason, by=by)

    @admin.display(description="Amount, balance after", ordering="amount")
    def signed_amount_display(self, obj):
        return with_after(obj.signed_amount, obj.balance_after, obj.get_effect_display())

    @admin.display(description="Reason")
    def reason_or_cancel_reason(self, obj):
        return truncated(obj.cancel_reason or obj.reason, "2")


@admin.register(PointTransaction)
class PointTransactionAdmin(CorrectionsMixin, ReadOnlyLedgerAdmin):
    search_help_text = (
        "Exact id, partner transaction id, redemption id, or a customer's email, member id "
        "or wallet address."
    )
    # Redemption and partner transaction ids are searched for, and shown on the object page;
    # revert, confirmation and attention are one state column.
    list_display = [
        "id",
        "customer_link",
        "partner_link",
        "kind",
        "points_display",
        "state",
        "created_display",
    ]
    # Filters on indexed columns only (merchant: (merchant, id); kind: (kind, id);
    # needs_attention: a partial index; partner: FK index; created: its own index).
    list_filter = ["merchant", "kind", "needs_attention", "partner", "created"]
    # Not in get_queryset(): ChangeList ignores list_select_related if that already selects.
    list_select_related = ["customer", "merchant", "partner", "reverts", "reverted_by"]
    raw_id_fields = ["customer", "merchant", "partner", "reverts"]
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
        "reverted_by_link",  # both ways: what reverted a deduction, what a revert reverts
        "reason",
        "created",
        "confirmation_status",
        "confirmed_at",
        "needs_attention",
        "usd_amount",
        "ygg_amount",
        "price_ygg_usd",
        "txn_confirmed",
        "txn_hash",
        "initial_at",
        "pending_at",
        "claimed_at",
        "reverted_at",
    ]

    def search_q(self, term: str) -> Q:
        return (
            super().search_q(term)
            | Q(partner_transaction_id=term)  # unique index
            | Q(redemption_id=term, kind=PointTransaction.Kind.DEDUCT)  # partial unique index
        )

    @admin.display(description="Points, after", ordering="points")
    def points_display(self, obj):
        return with_after(obj.points, obj.points_after)

    @admin.display(description="Partner", ordering="partner_id")
    def partner_link(self, obj):
        if obj.partner is None:
            return "-"
        return admin_link(obj.partner, truncated(obj.partner.name, "s"))

    @admin.display(description="State")
    def state(self, obj):
        """Needs attention first, then the revert (either way) and the partner's confirmation."""
        parts = []
        if obj.needs_attention:
            parts.append(format_html('<strong class="attention">{}</strong>', "needs attention"))
        revert = self.revert_link(obj)
        if revert != "-":
            parts.append(revert)
        if obj.confirmation_status:
            parts.append(format_html("{} {}", "confirmed", obj.confirmation_status))
        if not parts:
            return "-"
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts))

    @admin.display(description="Revert")
    def revert_link(self, obj):
        if obj.kind == PointTransaction.Kind.REVERT:
            return admin_link(obj.reverts, f"reverts #{obj.reverts_id}")
        reverted_by = getattr(obj, "reverted_by", None)
        if reverted_by is not None:
            return admin_link(reverted_by, f"reverted by #{reverted_by.pk}")
        return "-"

    @admin.display(description="Revert")
    def reverted_by_link(self, obj):
        """What reverted this deduction (or what this revert reverts): when, who and why."""
        if obj.kind == PointTransaction.Kind.REVERT:
            original = obj.reverts
            return format_html(
                "Reverts {}, a deduction of {} points",
                admin_link(original, f"#{original.pk}"),
                abs(original.points),
            )
        revert = getattr(obj, "reverted_by", None)
        if revert is None:
            return "-"
        version = _version_of(PointTransaction, revert.pk, "point_deduction_revert")
        return _correction_text(
            format_html("Reverted by {}", admin_link(revert, f"#{revert.pk}")),
            version,
            revert.created,
            revert.reason,
        )


def _version_of(model, pk: int, operation: str):
    """The latest version of one object that `operation` wrote (a correction's history row)."""
    versions, _ = history.object_history_page(model, pk, limit=20)
    return next((v for v in versions if v.operation == operation), None)


def _utc(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment, dt.UTC):%Y-%m-%d %H:%M} UTC"


def _channel_label(channel: str) -> str:
    return Channel(channel).label if channel in Channel.values else channel


def _correction_text(what, version, when: dt.datetime, reason: str, by: str | None = None):
    """ "Canceled on 2026-12-06 14:03 UTC by support: <reason>"; the channel, unless admin."""
    by = by or (version.actor if version is not None else None)
    channel = version.channel if version is not None else ""
    return format_html(
        "{} on {}{}{}{}",
        what,
        _utc(when),
        format_html(" by {}", by) if by else "",
        f" via {_channel_label(channel)}" if channel and channel != Channel.ADMIN else "",
        f": {reason}" if reason else "",
    )
