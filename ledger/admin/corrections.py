"""Corrective actions in the admin, in the shape of Django's `delete_selected`.

A correction is offered twice: as a bulk action on the changelist and as a button on the
object page (only where it could succeed now); both land on one confirmation page that lists
every selected object with its value now and after (or the refusal it would get), asks for a
reason, and applies on a second POST. The "after" column comes from the real services run in
one rolled-back transaction, in the order the real run uses, so it decides exactly as the
real run will.

"Yes" applies only what the page previewed: the preview signs its parameters (kind, object
ids, amount, user) into a short-lived token, and the second POST is refused, and previewed
again, unless its parameters are the signed ones. Each applied correction is also written to
Django's admin log, so the index's "Recent actions" shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.models import Customer
from ledger import approvals, corrections, services
from ledger.admin.held import held_why
from ledger.models import MAX_AMOUNT
from loyalty.audit import Channel
from loyalty.errors import DomainError
from loyalty.preview import dry_run

# A confirmation page runs one preview per object: keep a selection reviewable and bounded.
MAX_OBJECTS = 200
PREVIEW_REASON = "preview of a correction"
# How long a preview may be confirmed (seconds): long enough to type a reason.
PREVIEW_MAX_AGE = 30 * 60


class CorrectionForm(forms.Form):
    reason = forms.CharField(
        min_length=services.REASON_MIN,
        max_length=services.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why (3 to 500 characters). Recorded in the history of every object changed.",
    )

    def __init__(self, *args, applying: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.applying = applying

    def clean(self):
        cleaned = super().clean()
        if not self.applying:
            # A preview needs no reason: only applying records one.
            self._errors.pop("reason", None)
        return cleaned


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


# --- the preview token -----------------------------------------------------------------------


class StalePreview(Exception):
    """The second POST's parameters are not the ones the page previewed."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _salt(kind: str) -> str:
    return f"ledger.admin.corrections.preview.{kind}"


def _previewed(kind: str, ids, amount: int | None, user) -> dict:
    return {"kind": kind, "ids": sorted(ids), "amount": amount, "user": user.pk}


def preview_token(kind: str, ids, amount: int | None, user) -> str:
    """What a preview signs: its kind, its objects, its amount and who saw it."""
    return signing.dumps(_previewed(kind, ids, amount, user), salt=_salt(kind))


def check_preview_token(
    token: str, kind: str, ids, amount: int | None, user, max_age: int | None = None
) -> None:
    """Raise `StalePreview` unless `token` signs exactly these parameters, recently enough."""
    if not token:
        raise StalePreview(
            "amount" if amount is not None else None,
            "Preview first: check the preview below, then confirm.",
        )
    try:
        signed = signing.loads(
            token, salt=_salt(kind), max_age=PREVIEW_MAX_AGE if max_age is None else max_age
        )
    except signing.SignatureExpired:
        raise StalePreview(
            None, "The preview has expired: check the new preview below, then confirm again."
        ) from None
    except signing.BadSignature:
        signed = None
    expected = _previewed(kind, ids, amount, user)
    if signed == expected:
        return
    if isinstance(signed, dict) and {**signed, "amount": amount} == expected:
        raise StalePreview(
            "amount",
            "The amount changed after the preview, so nothing was applied: check the new "
            "preview below, then confirm.",
        )
    raise StalePreview(
        None,
        "This confirmation does not match the preview shown, so nothing was applied: check "
        "the preview below, then confirm.",
    )


# --- what the admin shows of each correction -------------------------------------------------


@dataclass(frozen=True)
class Correction:
    """How the admin offers one correction of the registry: what "now" and "after" show.

    Its name (the action's name and URL slug), labels, permission and service are the
    registry's; only the page's button label, columns and sentences are the admin's own.
    """

    registered: corrections.Correction
    object_label: str  # the button on one object's page: "Cancel this balance update"
    done_to: str  # a result sentence's start, before what was corrected: "Canceled"
    value_label: str  # what "now" and "after" show
    now: Callable[[object], str]
    after: Callable[[object], str]  # of what the service answers
    select_related: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.registered.kind

    @property
    def label(self) -> str:
        return self.registered.label

    @property
    def done(self) -> str:
        return self.registered.done

    @property
    def with_amount(self) -> bool:
        return self.registered.takes_amount

    def available(self, obj) -> bool:
        return self.registered.available(obj)

    def run(self, actor, obj, reason: str, amount: int | None):
        """Submit it (section 8): applied now, or held for a second person's approval."""
        return approvals.submit(
            self.registered,
            actor=actor,
            channel=Channel.ADMIN,
            target=obj,
            reason=reason,
            amount=amount,
        )


@dataclass
class Outcome:
    obj: object
    label: str
    now: str
    after: str | None = None
    refusal: str | None = None
    result: object = None  # what the service answered
    held: str | None = None  # why it needs approval (policy or staff limit)
    approval: object | None = None  # the request it is held as (rolled back in a preview)


def _balance(customer_id: int) -> int:
    return Customer.objects.values_list("balance", flat=True).get(pk=customer_id)


def _points(customer_id: int) -> int:
    return Customer.objects.values_list("points", flat=True).get(pk=customer_id)


def _stamp_value(stamp) -> str:
    return f"{stamp.count}/{stamp.max_stamps}" + (" (deleted)" if stamp.deleted_at else "")


_BY_KIND = corrections.BY_KIND
ADMIN_CORRECTIONS = {
    c.name: c
    for c in [
        Correction(
            _BY_KIND["deduct_stamp"],
            object_label="Remove one stamp",
            done_to="Removed one stamp from",
            value_label="Stamp count",
            now=_stamp_value,
            after=_stamp_value,
            select_related=("customer", "card"),
        ),
        Correction(
            _BY_KIND["cancel_balance_update"],
            object_label="Cancel this balance update",
            done_to="Canceled",
            value_label="Status; customer balance",
            # Read fresh: an earlier update of the same customer in the selection moved it.
            now=lambda update: f"{update.status}; balance {_balance(update.customer_id)}",
            after=lambda update: f"{update.status}; balance {update.customer.balance}",
            select_related=("customer",),
        ),
        Correction(
            _BY_KIND["revert_points"],
            object_label="Revert this deduction",
            done_to="Reverted",
            value_label="Customer points",
            now=lambda txn: f"{_points(txn.customer_id)} points",
            after=lambda revert: f"{revert.points_after} points",
            select_related=("customer", "partner"),
        ),
        Correction(
            _BY_KIND["adjust_balance"],
            object_label="Adjust balance",
            done_to="Adjusted the balance of",
            value_label="Balance",
            now=lambda customer: f"balance {customer.balance}",
            after=lambda update: f"balance {update.balance_after}",
        ),
        Correction(
            _BY_KIND["adjust_points"],
            object_label="Adjust points",
            done_to="Adjusted the points of",
            value_label="Points",
            now=lambda customer: f"{customer.points} points",
            after=lambda txn: f"{txn.points_after} points",
        ),
    ]
}


def for_model(model) -> tuple[Correction, ...]:
    """The admin corrections of `model`'s pages, in registry order."""
    return tuple(ADMIN_CORRECTIONS[c.kind] for c in corrections.for_target(model))


def label(obj) -> str:
    """An object as a person reads it: its own `__str__` (a customer's email, a card's name)."""
    return str(obj)


def _link(obj) -> str:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label(obj))


# --- attempting and applying -----------------------------------------------------------------


def attempt(correction: Correction, actor, obj, reason: str, amount) -> Outcome:
    """The one place a correction is attempted on one object: its outcome, or its refusal."""
    outcome = Outcome(obj, label(obj), correction.now(obj))
    try:
        submitted = correction.run(actor, obj, reason, amount)
    except DomainError as exc:
        outcome.refusal = exc.message
    else:
        # --- approvals (section 8): a held correction changes nothing ------------------------
        if submitted.approval is not None:
            outcome.approval = submitted.approval
            outcome.held = held_why(submitted.approval)
        else:
            outcome.result = submitted.result
            outcome.after = correction.after(submitted.result)
    return outcome


def attempt_each(correction: Correction, actor, objects, reason: str, amount) -> list[Outcome]:
    """Run the correction on each object in order; a refusal changes nothing and stops nothing."""
    return [attempt(correction, actor, obj, reason, amount) for obj in objects]


def _log_message(correction: Correction, outcome: Outcome, reason: str, amount) -> str:
    by = f" by {amount:+d}" if amount is not None else ""
    return f"{correction.done}{by}: {outcome.now} → {outcome.after}. Reason: {reason}"


def apply_each(model_admin, request, correction: Correction, objects, reason: str, amount):
    """Apply the correction for real on each object, each applied one in the admin log."""
    outcomes = attempt_each(correction, request.user, objects, reason, amount)
    for outcome in outcomes:
        if outcome.after is not None:  # applied (not refused, nor anything else)
            # The corrected object as it is now (the service's answer, unless it made a row).
            obj = outcome.obj if correction.registered.creates else outcome.result
            model_admin.log_change(request, obj, _log_message(correction, outcome, reason, amount))
    return outcomes


def correction_action(correction: Correction):
    """The changelist action of `correction` (`CorrectionsMixin.get_actions` guards it)."""

    def action(model_admin, request, queryset):
        return run_correction(model_admin, request, correction, queryset)

    action.__name__ = correction.name
    return admin.action(description=correction.label)(action)


def _report(model_admin, request, correction: Correction, outcomes: list[Outcome]) -> None:
    """One message per outcome group: a sentence for one object, a sentence and a list else."""
    opts = model_admin.model._meta
    done = [o for o in outcomes if o.after is not None]
    refused = [o for o in outcomes if o.refusal is not None]
    held = [o for o in outcomes if o.held is not None]

    def counted(n: int) -> str:
        return f"{n} {opts.verbose_name if n == 1 else opts.verbose_name_plural}"

    if len(done) == 1:
        (o,) = done
        message = format_html("{} {}: {} → {}.", correction.done_to, _link(o.obj), o.now, o.after)
        model_admin.message_user(request, message, messages.SUCCESS)
    elif done:
        items = format_html_join(
            "", "<li>{}: {} → {}</li>", ((_link(o.obj), o.now, o.after) for o in done)
        )
        message = format_html("{} {}:<ul>{}</ul>", correction.done_to, counted(len(done)), items)
        model_admin.message_user(request, message, messages.SUCCESS)
    if len(refused) == 1:
        (o,) = refused
        message = format_html("Left {} unchanged: {}", _link(o.obj), o.refusal)
        model_admin.message_user(request, message, messages.WARNING)
    elif refused:
        items = format_html_join(
            "", "<li>{}: {}</li>", ((_link(o.obj), o.refusal) for o in refused)
        )
        message = format_html(
            "Refused for {}, left unchanged:<ul>{}</ul>", counted(len(refused)), items
        )
        model_admin.message_user(request, message, messages.WARNING)
    if held:
        items = format_html_join(
            "",
            '<li>{}: <a href="{}">approval request #{}</a> ({})</li>',
            (
                (
                    _link(o.obj),
                    reverse("admin:ledger_approval_change", args=[o.approval.pk]),
                    o.approval.pk,
                    o.held,
                )
                for o in held
            ),
        )
        message = format_html(
            "Held for approval: {}, not applied until a second person approves:<ul>{}</ul>",
            counted(len(held)),
            items,
        )
        model_admin.message_user(request, message, messages.WARNING)


def run_correction(model_admin, request, correction: Correction, queryset, single=None):
    """The confirmation page (GET, first POST, preview, refused confirmation) or the
    correction (a confirmation whose parameters are the ones previewed)."""
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
    ids = [obj.pk for obj in objects]
    form_class = AdjustmentForm if correction.with_amount else CorrectionForm
    applying = request.method == "POST" and "post" in request.POST  # the "Yes" button
    submitted = applying or (request.method == "POST" and "preview" in request.POST)
    form = form_class(request.POST if submitted else None, applying=applying)
    valid = form.is_valid()
    amount = form.cleaned_data.get("amount") if form.is_bound else None
    if valid and applying:
        try:
            check_preview_token(
                request.POST.get("preview_token", ""), correction.name, ids, amount, request.user
            )
        except StalePreview as exc:
            form.add_error(exc.field, exc.message)
        else:
            outcomes = apply_each(
                model_admin, request, correction, objects, form.cleaned_data["reason"], amount
            )
            _report(model_admin, request, correction, outcomes)
            if single is not None:
                return HttpResponseRedirect(
                    reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[single.pk])
                )
            return None

    token = None
    if correction.with_amount and amount is None:
        previews = [Outcome(obj, label(obj), correction.now(obj)) for obj in objects]
    else:
        previews = dry_run(
            lambda: attempt_each(correction, request.user, objects, PREVIEW_REASON, amount)
        )
        token = preview_token(correction.name, ids, amount, request.user)
    for outcome in previews:
        outcome.link = _link(outcome.obj)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{correction.object_label if single else correction.label}: are you sure?",
        "subtitle": None,
        "opts": opts,
        "correction": correction,
        "outcomes": previews,
        "will_change": sum(1 for o in previews if o.after is not None),
        "will_refuse": sum(1 for o in previews if o.refusal is not None),
        "will_hold": sum(1 for o in previews if o.held is not None),
        "form": form,
        "preview_token": token,
        "previewed_amount": amount if token else None,
        "objects_name": opts.verbose_name if len(objects) == 1 else opts.verbose_name_plural,
        "queryset": objects,
        "single": single,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/backoffice/correction_confirmation.html", context)


class CorrectionsMixin:
    """Adds the registry's corrections of the ModelAdmin's model: their changelist actions
    (offered only to users holding each one's permission) and their object-page buttons."""

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        self.corrections = for_model(model)
        self.actions = [*(self.actions or ()), *map(correction_action, self.corrections)]

    def has_correction_permission(self, request, correction: Correction) -> bool:
        return request.user.has_perm(correction.registered.permission)

    def get_actions(self, request):
        actions = super().get_actions(request)
        for correction in self.corrections:
            if not self.has_correction_permission(request, correction):
                actions.pop(correction.name, None)
        return actions

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
                c.object_label,
                reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_correction", args=[obj.pk, c.name]
                ),
            )
            for c in self.corrections
            if self.has_correction_permission(request, c) and c.available(obj)
        ] + super().object_buttons(request, obj)
