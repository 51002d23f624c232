"""Admin pages for merchants, stores and customers; customers' balance and points corrections."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html, format_html_join

from accounts import services
from accounts.models import Customer, Merchant, Store
from ledger.admin import approvals
from ledger.admin.base import BackOfficeAdmin, admin_link, changelist_link, truncated
from ledger.admin.corrections import CorrectionsMixin
from ledger.models import BalanceUpdate, Event, PointTransaction, Stamp, StampCard
from loyalty.audit import Channel

RECENT_ROWS = 10
MAX_ID_DIGITS = 18  # a longer number cannot be a bigint id


def customer_q(term: str, prefix: str = "") -> Q:
    """Exact match on an indexed identifier: email, wallet address, member id or id."""
    term = term.strip()
    if "@" in term:
        return Q(**{f"{prefix}email": term.lower()})
    if term.lower().startswith("0x"):
        return Q(**{f"{prefix}wallet_address": term.lower()})
    q = Q(**{f"{prefix}member_id": term})
    if term.isdigit() and len(term) <= MAX_ID_DIGITS:
        q |= Q(**{f"{prefix}pk" if prefix else "pk": int(term)})
    return q


@admin.register(Merchant)
class MerchantAdmin(BackOfficeAdmin):
    list_display = ["id", "name", "created_display", "related"]
    list_display_links = ["id", "name"]
    search_fields = ["name"]  # a small table; also serves the merchant autocomplete
    sortable_by = ["id", "name", "created_display"]

    def get_fields(self, request, obj=None):
        return ["name"] if obj is None else ["id", "name", "created", "related"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["id", "name", "created", "related"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # no service renames a merchant; the page is read-only

    def call_service(self, request, form, change):
        return services.merchant_create(
            actor=request.user, channel=Channel.ADMIN, name=form.cleaned_data["name"]
        )

    @admin.display(description="Related")
    def related(self, obj):
        return format_html(
            "{} · {} · {}",
            changelist_link(Store, "stores", merchant__id__exact=obj.pk),
            changelist_link(Customer, "customers", merchant__id__exact=obj.pk),
            changelist_link(StampCard, "stamp cards", merchant__id__exact=obj.pk),
        )


@admin.register(Store)
class StoreAdmin(BackOfficeAdmin):
    list_display = ["id", "name", "merchant_link", "created_display"]
    list_display_links = ["id", "name"]
    list_filter = ["merchant"]
    list_select_related = ["merchant"]
    search_fields = ["name"]
    autocomplete_fields = ["merchant"]
    sortable_by = ["id", "name", "created_display"]

    def get_fields(self, request, obj=None):
        return ["merchant", "name"] if obj is None else ["id", "merchant", "name", "created"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["id", "merchant", "name", "created"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def call_service(self, request, form, change):
        return services.store_create(
            actor=request.user,
            channel=Channel.ADMIN,
            merchant=form.cleaned_data["merchant"],
            name=form.cleaned_data["name"],
        )

    @admin.display(description="Merchant", ordering="merchant_id")
    def merchant_link(self, obj):
        return admin_link(obj.merchant, truncated(obj.merchant, "m"))


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ["merchant", "email", "member_id", "wallet_address", "name", "status"]

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_wallet_address(self) -> str:
        return self.cleaned_data["wallet_address"].strip().lower()


IDENTITY_FIELDS = ["email", "member_id", "wallet_address", "name", "status"]


def _table(headers: list[str], rows) -> str:
    if not rows:
        return format_html("<p>{}</p>", "None yet.")
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html('<table class="related-rows"><tr>{}</tr>{}</table>', head, body)


@admin.register(Customer)
class CustomerAdmin(CorrectionsMixin, BackOfficeAdmin):
    form = CustomerForm
    # What fits beside the filters at 1280 px: who, their tier, how much, since when. The
    # other identifiers are a quiet second line; everything is on the object page.
    list_display = [
        "id",
        "identity",
        "merchant_link",
        "status",
        "balance",
        "points",
        "created_display",
    ]
    list_display_links = ["id", "identity"]
    list_filter = ["merchant"]
    list_select_related = ["merchant"]
    search_fields = ["=email"]  # shows the search box; get_search_results does the work
    search_help_text = "Exact id, email, member id or wallet address."
    autocomplete_fields = ["merchant"]
    sortable_by = ["id", "created_display"]

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(customer_q(search_term)), False

    def get_fieldsets(self, request, obj=None):
        membership = ("Membership", {"fields": ["merchant", *IDENTITY_FIELDS]})
        if obj is None:
            return [membership]
        return [
            membership,
            ("Value", {"fields": ["id", "balance", "points", "created"]}),
            ("Latest stamps", {"fields": ["recent_stamps"]}),
            ("Latest balance updates", {"fields": ["recent_balance_updates"]}),
            ("Latest point transactions", {"fields": ["recent_point_transactions"]}),
            *self._events_fieldset(request),
            *self._approvals_fieldset(request),
        ]

    @staticmethod
    def _approvals_fieldset(request) -> list:
        # Approval requests are for their readers (Support, Supervisor, Auditor).
        if not request.user.has_perm(approvals.VIEW):
            return []
        return [("Pending approval requests", {"fields": ["pending_approvals"]})]

    @staticmethod
    def _events_fieldset(request) -> list:
        # The customer's events are for holders of view_event (the feed's permission).
        if not request.user.has_perm("ledger.view_event"):
            return []
        return [("Latest events", {"fields": ["recent_events"]})]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "merchant",  # a membership never moves to another merchant
            "id",
            "balance",
            "points",
            "created",
            "recent_stamps",
            "recent_balance_updates",
            "recent_point_transactions",
            "recent_events",
            "pending_approvals",
        ]

    def call_service(self, request, form, change):
        data = {name: form.cleaned_data.get(name, "") for name in IDENTITY_FIELDS}
        if change:
            return services.customer_update(
                actor=request.user, channel=Channel.ADMIN, customer=form.instance, **data
            )
        return services.customer_create(
            actor=request.user,
            channel=Channel.ADMIN,
            merchant=form.cleaned_data["merchant"],
            **data,
        )

    @admin.display(description="Wallet")
    def short_wallet(self, obj):
        w = obj.wallet_address
        return f"{w[:6]}…{w[-4:]}" if len(w) > 12 else w

    @admin.display(description="Customer")
    def identity(self, obj):
        """The email (or the first identifier there is), then member id, wallet and name."""
        main = obj.email or obj.member_id or obj.wallet_address or obj.name or f"#{obj.pk}"
        rest = [v for v in (obj.member_id, self.short_wallet(obj), obj.name) if v and v != main]
        if not rest:
            return truncated(main)
        return format_html(
            '{}<br><span class="quiet-line">{}</span>',
            truncated(main),
            truncated(" · ".join(rest)),
        )

    @admin.display(description="Merchant", ordering="merchant_id")
    def merchant_link(self, obj):
        return admin_link(obj.merchant, truncated(obj.merchant.name, "s"))

    @admin.display(description="Stamps")
    def recent_stamps(self, obj):
        rows = [
            (
                admin_link(s, f"#{s.pk}"),
                admin_link(s.card, s.card.name),
                f"{s.count}/{s.max_stamps}",
                "yes" if s.active else "no",
                "yes" if s.redeemed else "no",
                s.end_date,
            )
            for s in obj.stamps.select_related("card").order_by("-id")[:RECENT_ROWS]
        ]
        return format_html(
            "{}{}",
            _table(["Stamp", "Card", "Count", "Active", "Redeemed", "Ends"], rows),
            changelist_link(Stamp, "All stamps of this customer →", customer__id__exact=obj.pk),
        )

    @admin.display(description="Balance updates")
    def recent_balance_updates(self, obj):
        rows = [
            (
                admin_link(u, f"#{u.pk}"),
                u.get_effect_display(),
                f"{u.signed_amount:+d}",
                u.status,
                u.balance_after,
                u.created.strftime("%Y-%m-%d %H:%M"),
                truncated(u.cancel_reason or u.reason, "m"),
            )
            for u in obj.balance_updates.order_by("-id")[:RECENT_ROWS]
        ]
        return format_html(
            "{}{}",
            _table(
                ["Update", "Effect", "Amount", "Status", "Balance after", "Created", "Reason"], rows
            ),
            changelist_link(
                BalanceUpdate, "All balance updates of this customer →", customer__id__exact=obj.pk
            ),
        )

    @admin.display(description="Point transactions")
    def recent_point_transactions(self, obj):
        rows = [
            (
                admin_link(t, f"#{t.pk}"),
                t.get_kind_display(),
                f"{t.points:+d}",
                t.points_after,
                truncated(t.partner.name if t.partner else "", "s"),
                truncated(t.redemption_id, "s"),
                t.created.strftime("%Y-%m-%d %H:%M"),
            )
            for t in obj.point_transactions.select_related("partner").order_by("-id")[:RECENT_ROWS]
        ]
        return format_html(
            "{}{}",
            _table(
                [
                    "Transaction",
                    "Kind",
                    "Points",
                    "Points after",
                    "Partner",
                    "Redemption",
                    "Created",
                ],
                rows,
            ),
            changelist_link(
                PointTransaction,
                "All point transactions of this customer →",
                customer__id__exact=obj.pk,
            ),
        )

    @admin.display(description="Events")
    def recent_events(self, obj):
        rows = [
            (
                e.customer_sequence,
                e.type,
                truncated(e.event_id, "s"),
                truncated(f"{e.actor_name} ({e.actor_type})", "s"),
                e.channel,
                truncated(e.reason, "s"),
                e.created.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for e in Event.objects.filter(customer=obj).order_by("-customer_sequence")[:RECENT_ROWS]
        ]
        return _table(["Sequence", "Type", "Event", "Actor", "Channel", "Reason", "Created"], rows)

    @admin.display(description="Pending requests")
    def pending_approvals(self, obj):
        return format_html(
            "{}{}",
            _table(
                ["Request", "Kind", "Size", "Requested by", "Why", "Created", "Expires"],
                approvals.pending_table(obj),
            ),
            changelist_link(approvals.Approval, "The approvals queue →", status="pending"),
        )
