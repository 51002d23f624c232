"""Corrective actions in the admin, in the shape of Django's `delete_selected`.

A correction is offered twice: as a bulk action on the changelist and as a button on the
object page; both land on one confirmation page that lists every selected object with its
value now and after (or the refusal it would get), asks for a reason, and applies on a second
POST. The "after" column comes from the real services run in one rolled-back transaction, in
the order the real run uses, so it decides exactly as the real run will.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import Customer
from ledger import services
from ledger.models import MAX_AMOUNT
from loyalty.audit import Channel
from loyalty.errors import DomainError
from loyalty.preview import dry_run

# A confirmation page runs one preview per object: keep a selection reviewable and bounded.
MAX_OBJECTS = 200
PREVIEW_REASON = "preview of a correction"


class CorrectionForm(forms.Form):
    reason = forms.CharField(
        min_length=services.REASON_MIN,
        max_length=services.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why (3 to 500 characters). Recorded in the history of every object changed.",
    )


class AdjustmentForm(CorrectionForm):
    amount = forms.IntegerField(
        min_value=-MAX_AMOUNT,
        max_value=MAX_AMOUNT,
        help_text="Signed: 50 adds 50, -50 takes 50 off. Applied to each selected customer.",
    )
    field_order = ["amount", "reason"]

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise ValidationError("must not be 0")
        return amount


@dataclass(frozen=True)
class Correction:
    name: str  # action name and URL slug
    label: str  # action and button label
    done: str  # what the result message says was done
    permission: str  # the ModelAdmin has `has_<permission>_permission(request)`
    value_label: str  # what "now" and "after" show
    now: Callable[[object], str]
    run: Callable[[object, object, str, int | None], object]  # (actor, obj, reason, amount)
    after: Callable[[object], str]
    with_amount: bool = False
    select_related: tuple[str, ...] = ()


@dataclass
class Outcome:
    obj: object
    label: str
    now: str
    after: str | None = None
    refusal: str | None = None


def _balance(customer_id: int) -> int:
    return Customer.objects.values_list("balance", flat=True).get(pk=customer_id)


def _points(customer_id: int) -> int:
    return Customer.objects.values_list("points", flat=True).get(pk=customer_id)


def _stamp_value(stamp) -> str:
    return f"{stamp.count}/{stamp.max_stamps}" + (" (deleted)" if stamp.deleted_at else "")


REMOVE_STAMP = Correction(
    name="remove_stamp",
    label="Remove one stamp",
    done="Removed one stamp",
    permission="remove_stamp",
    value_label="Stamp count",
    now=_stamp_value,
    run=lambda actor, stamp, reason, amount: services.stamp_remove(
        actor=actor, channel=Channel.ADMIN, stamp=stamp, reason=reason
    ),
    after=_stamp_value,
    select_related=("customer", "card"),
)

CANCEL_BALANCE_UPDATES = Correction(
    name="cancel_balance_updates",
    label="Cancel balance updates",
    done="Canceled",
    permission="cancel_balanceupdate",
    value_label="Status; customer balance",
    # Read fresh: an earlier update of the same customer in the selection moved it.
    now=lambda update: f"{update.status}; balance {_balance(update.customer_id)}",
    run=lambda actor, update, reason, amount: services.balance_update_cancel(
        actor=actor, channel=Channel.ADMIN, balance_update=update, reason=reason
    ),
    after=lambda update: f"{update.status}; balance {update.customer.balance}",
    select_related=("customer",),
)

REVERT_POINT_DEDUCTIONS = Correction(
    name="revert_point_deductions",
    label="Revert point deductions",
    done="Reverted",
    permission="revert_pointtransaction",
    value_label="Customer points",
    now=lambda txn: f"{_points(txn.customer_id)} points",
    run=lambda actor, txn, reason, amount: services.point_deduction_revert(
        actor=actor, channel=Channel.ADMIN, deduction=txn, reason=reason
    ),
    after=lambda revert: f"{revert.points_after} points",
    select_related=("customer", "partner"),
)

ADJUST_BALANCE = Correction(
    name="adjust_balance",
    label="Adjust balance",
    done="Adjusted the balance",
    permission="adjust_balance_customer",
    value_label="Balance",
    now=lambda customer: f"balance {customer.balance}",
    run=lambda actor, customer, reason, amount: services.balance_adjust(
        actor=actor, channel=Channel.ADMIN, customer=customer, amount=amount, reason=reason
    ),
    after=lambda update: f"balance {update.balance_after}",
    with_amount=True,
)

ADJUST_POINTS = Correction(
    name="adjust_points",
    label="Adjust points",
    done="Adjusted the points",
    permission="adjust_points_customer",
    value_label="Points",
    now=lambda customer: f"{customer.points} points",
    run=lambda actor, customer, reason, amount: services.points_adjust(
        actor=actor, channel=Channel.ADMIN, customer=customer, amount=amount, reason=reason
    ),
    after=lambda txn: f"{txn.points_after} points",
    with_amount=True,
)


def _label(obj) -> str:
    return f"{obj._meta.verbose_name} #{obj.pk}"


def attempt_each(correction: Correction, actor, objects, reason: str, amount) -> list[Outcome]:
    """Run the correction on each object in order; a refusal changes nothing and stops nothing."""
    outcomes = []
    for obj in objects:
        outcome = Outcome(obj, _label(obj), correction.now(obj))
        try:
            result = correction.run(actor, obj, reason, amount)
        except DomainError as exc:
            outcome.refusal = exc.message
        else:
            outcome.after = correction.after(result)
        outcomes.append(outcome)
    return outcomes


def correction_action(correction: Correction):
    """The changelist action of `correction`, guarded by its permission."""

    def action(model_admin, request, queryset):
        return run_correction(model_admin, request, correction, queryset)

    action.__name__ = correction.name
    return admin.action(permissions=[correction.permission], description=correction.label)(action)


def _report(model_admin, request, correction: Correction, outcomes: list[Outcome]) -> None:
    opts = model_admin.model._meta
    done = [o for o in outcomes if o.refusal is None]
    refused = [o for o in outcomes if o.refusal is not None]

    def name(n: int) -> str:
        return str(opts.verbose_name if n == 1 else opts.verbose_name_plural)

    if done:
        items = "; ".join(f"{o.label}: {o.now} → {o.after}" for o in done)
        model_admin.message_user(
            request, f"{correction.done}: {len(done)} {name(len(done))}. {items}.", messages.SUCCESS
        )
    if refused:
        items = "; ".join(f"{o.label}: {o.refusal}" for o in refused)
        model_admin.message_user(
            request,
            f"Refused: {len(refused)} {name(len(refused))}, left unchanged. {items}",
            messages.WARNING,
        )


def run_correction(model_admin, request, correction: Correction, queryset, single=None):
    """The confirmation page (GET, first POST, invalid form) or the correction (second POST)."""
    if not model_admin.has_correction_permission(request, correction):
        raise PermissionDenied
    opts = model_admin.model._meta
    if queryset.order_by()[: MAX_OBJECTS + 1].count() > MAX_OBJECTS:
        model_admin.message_user(
            request,
            f"Select at most {MAX_OBJECTS} {opts.verbose_name_plural} for one correction.",
            messages.ERROR,
        )
        return None
    objects = list(queryset.select_related(*correction.select_related).order_by("pk"))
    form_class = AdjustmentForm if correction.with_amount else CorrectionForm
    submitted = request.method == "POST" and ("post" in request.POST or "preview" in request.POST)
    form = form_class(request.POST if submitted else None)
    valid = form.is_valid()
    if valid and request.POST.get("post") == "yes":
        cleaned = form.cleaned_data
        outcomes = attempt_each(
            correction, request.user, objects, cleaned["reason"], cleaned.get("amount")
        )
        _report(model_admin, request, correction, outcomes)
        if single is not None:
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[single.pk])
            )
        return None

    amount = form.cleaned_data.get("amount") if form.is_bound else None
    if correction.with_amount and amount is None:
        previews = [Outcome(obj, _label(obj), correction.now(obj)) for obj in objects]
    else:
        previews = dry_run(
            lambda: attempt_each(correction, request.user, objects, PREVIEW_REASON, amount)
        )
    for outcome in previews:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[outcome.obj.pk])
        outcome.link = format_html('<a href="{}">{}</a>', url, outcome.label)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{correction.label}: are you sure?",
        "subtitle": None,
        "opts": opts,
        "correction": correction,
        "outcomes": previews,
        "will_change": sum(1 for o in previews if o.after is not None),
        "will_refuse": sum(1 for o in previews if o.refusal is not None),
        "form": form,
        "objects_name": opts.verbose_name if len(objects) == 1 else opts.verbose_name_plural,
        "queryset": objects,
        "single": single,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/backoffice/correction_confirmation.html", context)


class CorrectionsMixin:
    """Adds `corrections` to a ModelAdmin: their actions and their object-page buttons.

    The subclass lists `actions = [correction_action(c) for c in corrections]` and defines
    `has_<permission>_permission(request)` for each.
    """

    corrections: tuple[Correction, ...] = ()

    def has_correction_permission(self, request, correction: Correction) -> bool:
        return getattr(self, f"has_{correction.permission}_permission")(request)

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/correction/<slug:name>/",
                self.admin_site.admin_view(self.correction_view),
                name=f"{opts.app_label}_{opts.model_name}_correction",
            ),
            *super().get_urls(),
        ]

    def correction_view(self, request, object_id, name):
        correction = next((c for c in self.corrections if c.name == name), None)
        if correction is None:
            raise Http404
        if not self.has_correction_permission(request, correction):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        queryset = self.get_queryset(request).filter(pk=obj.pk)
        return run_correction(self, request, correction, queryset, single=obj)

    def object_buttons(self, request, obj) -> list[tuple[str, str]]:
        opts = self.model._meta
        return [
            (
                c.label,
                reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_correction", args=[obj.pk, c.name]
                ),
            )
            for c in self.corrections
            if self.has_correction_permission(request, c)
        ] + super().object_buttons(request, obj)
