"""Admin pages for four-eyes approvals (CONTRACT section 8): the queue, approve, reject, cancel,
and the policies and staff limits that hold corrections.

The queue lists pending requests first, each with what it would do if approved now: the real
service run in a rolled-back transaction (`loyalty.preview.dry_run`), so the page decides as
approving will. Approving and rejecting copy the corrections' confirmation page: the request,
its effect now, a required reason, a second POST. Every decision goes through
`ledger.approvals` (which refuses self-approval, a second decision and an expired request);
the pages only hide what would be refused, they never decide. Nothing here deletes a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Customer
from ledger import approvals, services
from ledger.admin.base import BackOfficeAdmin, admin_link
from ledger.admin.corrections import ADMIN_CORRECTIONS, PREVIEW_REASON
from ledger.admin.held import held_why
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from ledger.models.approvals import Approval, ApprovalPolicy, StaffLimit
from loyalty.audit import Channel
from loyalty.errors import DomainError
from loyalty.preview import dry_run

APPROVE = approvals.APPROVE  # ledger.approve_correction
VIEW = "ledger.view_approval"
PENDING = "pending"
RECENT_REQUESTS = 10
SELF_NOTE = "You requested this correction: another person must approve or reject it."


class DecisionForm(forms.Form):
    reason = forms.CharField(
        min_length=services.REASON_MIN,
        max_length=services.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why (3 to 500 characters). Recorded in the request's history.",
    )


@dataclass
class Preview:
    """What approving would do now: the value now and after, or the refusal it would get."""

    now: str = ""
    after: str | None = None
    refusal: str | None = None

    def __str__(self) -> str:
        if self.refusal:
            return f"{self.now}: would be refused: {self.refusal}"
        return f"{self.now} → {self.after}" if self.after is not None else self.now


def target_of(approval):
    """The object the held correction would change (its kind's registry target), or None;
    read once per approval object (a queue row shows it and previews on it)."""
    if not hasattr(approval, "_admin_target"):
        approval._admin_target = _load_target(approval)
    return approval._admin_target


def _load_target(approval):
    correction = ADMIN_CORRECTIONS.get(approval.kind)
    if correction is None:  # a batch: no single target
        return None
    model = correction.registered.target
    if approval.target_model != model._meta.label_lower:
        return None
    queryset = model.objects.select_related(*correction.select_related)
    return queryset.filter(pk=approval.target_id).first()


def preview_now(approval) -> Preview:
    correction = ADMIN_CORRECTIONS.get(approval.kind)
    target = target_of(approval)
    if correction is None or target is None:
        return Preview(now="-")
    preview = Preview(now=correction.now(target))
    try:
        result = dry_run(
            lambda: correction.registered.apply(
                actor=approval.requested_by,
                channel=Channel.ADMIN,
                target=target,
                reason=PREVIEW_REASON,
                amount=approval.amount,
            )
        )
    except DomainError as exc:
        preview.refusal = exc.message
    else:
        preview.after = correction.after(result)
    return preview


def status_of(approval) -> str:
    """As the API reads it: a pending request past its expiry reads as expired."""
    return approvals.status_of(approval)


class StatusFilter(admin.SimpleListFilter):
    """By status as the API reads it: a pending request past its expiry is `expired`."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Approval.Status.choices

    def queryset(self, request, queryset):
        value, now = self.value(), timezone.now()
        due = Q(status=PENDING, expires_at__lte=now)
        if value == PENDING:
            return queryset.filter(status=PENDING, expires_at__gt=now)
        if value == Approval.Status.EXPIRED:
            return queryset.filter(Q(status=value) | due)
        if value in Approval.Status.values:
            return queryset.filter(status=value)
        return queryset


class RequesterFilter(admin.SimpleListFilter):
    title = "requested by"
    parameter_name = "requested_by"

    def lookups(self, request, model_admin):
        users = (
            Approval.objects.order_by("requested_by__username")
            .values_list("requested_by_id", "requested_by__username")
            .distinct()[:100]
        )
        return [("me", "me"), *((str(pk), name) for pk, name in users)]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "me":
            return queryset.filter(requested_by=request.user)
        if value and value.isdigit():
            return queryset.filter(requested_by_id=int(value))
        return queryset


@admin.register(Approval)
class ApprovalAdmin(BackOfficeAdmin):
    """The queue: read-only for everyone; approve, reject and cancel are confirmation pages."""

    list_display = ["id", "status_tag", "correction", "would_do_now", "request"]
    list_display_links = ["id"]
    list_filter = [StatusFilter, "kind", RequesterFilter]
    list_select_related = ["requested_by", "decided_by"]
    list_per_page = 25  # each pending row runs a preview
    change_form_template = "admin/backoffice/approval_change_form.html"
    sortable_by = ["id", "created", "expires_at"]
    fields = readonly_fields = [
        "id",
        "status_tag",
        "kind",
        "target_link",
        "size",
        "amount",
        "reason",
        "held",
        "requested_by",
        "channel",
        "created",
        "expires_at",
        "would_do_now",
        "decided_by",
        "decided_at",
        "decision_reason",
        "outcome",
    ]

    # --- who may do what ---------------------------------------------------------------------

    def has_add_permission(self, request) -> bool:
        return False  # requests are made by the corrections that need them

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a request never changes by form: approve, reject or cancel it

    def may_decide(self, request, approval) -> bool:
        return request.user.has_perm(APPROVE) and approval.requested_by_id != request.user.pk

    def may_cancel(self, request, approval) -> bool:
        return approval.requested_by_id == request.user.pk

    # --- the queue ---------------------------------------------------------------------------

    def get_queryset(self, request):
        pending_first = Case(
            When(status=PENDING, expires_at__gt=timezone.now(), then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        # Held corrections are the exception, so the table stays small enough to sort.
        queryset = self.model._default_manager.get_queryset().annotate(pending_first=pending_first)
        return queryset.order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        return ["pending_first", "-id"]

    @admin.display(description="Status")
    def status_tag(self, obj):
        return format_html('<span class="tag status-{}">{}</span>', *(status_of(obj),) * 2)

    @admin.display(description="Target")
    def target_link(self, obj):
        target = target_of(obj)
        if target is not None:
            return admin_link(target)
        # A kind beyond the registry (a batch): a link if its model has an admin page.
        try:
            return format_html(
                '<a href="{}">{} #{}</a>',
                reverse(f"admin:{obj.target_model.replace('.', '_')}_change", args=[obj.target_id]),
                obj.target_model,
                obj.target_id,
            )
        except NoReverseMatch:
            return f"{obj.target_model} #{obj.target_id}"

    @admin.display(description="Correction")
    def correction(self, obj):
        return format_html(
            '{}<br>{} <span class="help">size {}</span>',
            obj.get_kind_display(),
            self.target_link(obj),
            obj.size,
        )

    @admin.display(description="Requested")
    def request(self, obj):
        return format_html(
            '<strong>{}</strong>: {}<br><span class="help">{} {}</span>',
            obj.requested_by,
            obj.reason,
            "expired" if obj.expires_at <= timezone.now() else "expires",
            obj.expires_at.strftime("%Y-%m-%d %H:%M"),
        )

    @admin.display(description="Held because")
    def held(self, obj):
        return held_why(obj)

    @admin.display(description="Result")
    def outcome(self, obj):
        result = obj.result or {}
        if "code" in result:
            return f"Refused when approved ({result['code']}): {result.get('message', '')}"
        if "field" in result:
            return f"{result['field']} {result.get('before')} → {result.get('after')}"
        return "-"

    @admin.display(description="Would do now")
    def would_do_now(self, obj):
        if status_of(obj) != PENDING:
            return "-"
        return str(preview_now(obj))

    # --- the request's page: its buttons -------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["decision_note"] = None
        mine = obj is not None and obj.requested_by_id == request.user.pk
        if mine and status_of(obj) == PENDING and request.user.has_perm(APPROVE):
            context["decision_note"] = SELF_NOTE
        return super().render_change_form(request, context, add, change, form_url, obj)

    def object_buttons(self, request, obj) -> list[tuple[str, str]]:
        if status_of(obj) != PENDING:
            return []
        buttons = []
        if self.may_decide(request, obj):
            buttons += [
                ("Approve", reverse("admin:ledger_approval_decide", args=[obj.pk, "approve"])),
                ("Reject", reverse("admin:ledger_approval_decide", args=[obj.pk, "reject"])),
            ]
        if self.may_cancel(request, obj):
            buttons.append(
                ("Cancel request", reverse("admin:ledger_approval_decide", args=[obj.pk, "cancel"]))
            )
        return buttons

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/<slug:decision>/",
                self.admin_site.admin_view(self.decide_view),
                name="ledger_approval_decide",
            ),
            *super().get_urls(),
        ]

    # --- approve, reject, cancel ---------------------------------------------------------

    DECISIONS = {
        "approve": ("Approve", "Approve this correction"),
        "reject": ("Reject", "Reject this correction"),
        "cancel": ("Cancel request", "Cancel your request"),
    }

    def decide_view(self, request, object_id, decision):
        if decision not in self.DECISIONS:
            raise Http404
        approval = self.get_object(request, unquote(object_id))
        if approval is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if decision == "cancel":
            if not self.may_cancel(request, approval):
                raise PermissionDenied
        elif not request.user.has_perm(APPROVE):
            raise PermissionDenied
        with_reason = decision != "cancel"
        form = DecisionForm(request.POST if request.method == "POST" else None)
        page_url = reverse("admin:ledger_approval_change", args=[approval.pk])
        confirmed = request.method == "POST" and request.POST.get("post") == "yes"
        if confirmed and (not with_reason or form.is_valid()):
            self._decide(request, approval, decision, form)
            return HttpResponseRedirect(page_url)
        refusal = None
        if approval.requested_by_id == request.user.pk and with_reason:
            refusal = SELF_NOTE
        elif status_of(approval) != PENDING:
            refusal = f"This request is {status_of(approval)}: it can no longer be decided."
        label, title = self.DECISIONS[decision]
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}?",
            "subtitle": None,
            "opts": self.opts,
            "approval": approval,
            "target": self.target_link(approval),
            "preview": preview_now(approval) if status_of(approval) == PENDING else None,
            "decision": decision,
            "label": label,
            "form": form if with_reason else None,
            "refusal": refusal,
            "page_url": page_url,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/backoffice/approval_confirmation.html", context)

    def _decide(self, request, approval, decision: str, form) -> None:
        try:
            if decision == "cancel":
                approval = approvals.cancel(approval, actor=request.user, channel=Channel.ADMIN)
            else:
                act = approvals.approve if decision == "approve" else approvals.reject
                approval = act(
                    approval,
                    actor=request.user,
                    channel=Channel.ADMIN,
                    reason=form.cleaned_data["reason"],
                )
        except DomainError as exc:
            self.message_user(request, f"Refused: {exc.message}", messages.ERROR)
            return
        data = approvals.serialize(approval)
        status = data["status"]
        if status == "failed":
            result = data.get("result") or {}
            self.message_user(
                request,
                f"Approval request #{approval.pk} failed, nothing changed: "
                f"{result.get('message', '')}",
                messages.WARNING,
            )
        else:
            self.message_user(
                request, f"Approval request #{approval.pk} is now {status}.", messages.SUCCESS
            )


# --- policies and staff limits ---------------------------------------------------------


class SettingForm(forms.ModelForm):
    """A policy's or a limit's fields, and an optional reason recorded in its history."""

    reason = forms.CharField(
        required=False,
        max_length=services.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why (optional). Recorded in the history.",
    )


class SettingAdmin(BackOfficeAdmin):
    """Policies and limits: read by their viewers; changed and deleted by their managers
    (superusers, `manage_approvalpolicy`, for limits also `manage_stafflimit`), always through
    `ledger.approvals.setting_save` / `setting_delete`, which audit the change."""

    form = SettingForm
    setting_fields: list[str] = []

    def get_fields(self, request, obj=None):
        fields = [*self.setting_fields]
        if self.has_change_permission(request, obj):
            return [*fields, "reason"]
        return [*fields, "created"]

    def may_manage(self, request) -> bool:
        return approvals.can_manage(request.user, self.model)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        opts = self.opts
        return self.may_manage(request) or request.user.has_perm(
            f"{opts.app_label}.view_{opts.model_name}"
        )

    def has_add_permission(self, request) -> bool:
        return self.may_manage(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.may_manage(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.may_manage(request)

    def get_actions(self, request):
        return admin.ModelAdmin.get_actions(self, request)  # delete_selected for managers

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The model form validates every field and constraint the service's full_clean and
        # the database would refuse (one policy per merchant and kind, threshold >= 1), so
        # no dry run of the service is needed: it would meet the unique constraint before
        # the form's own check did.
        return admin.ModelAdmin.get_form(self, request, obj, change=change, **kwargs)

    def call_service(self, request, form, change):
        instance = form.instance if change else self.model()
        return approvals.setting_save(
            instance,
            actor=request.user,
            channel=Channel.ADMIN,
            reason=form.cleaned_data.get("reason", ""),
            **{name: form.cleaned_data[name] for name in self.setting_fields},
        )

    def delete_model(self, request, obj) -> None:
        approvals.setting_delete(obj, actor=request.user, channel=Channel.ADMIN)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset.order_by("pk"):
            self.delete_model(request, obj)


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(SettingAdmin):
    setting_fields = ["merchant", "kind", "threshold"]
    list_display = ["id", "merchant", "kind", "threshold", "created"]
    list_filter = ["kind"]
    list_select_related = ["merchant"]
    autocomplete_fields = ["merchant"]
    sortable_by = ["id", "kind", "threshold"]


@admin.register(StaffLimit)
class StaffLimitAdmin(SettingAdmin):
    setting_fields = ["user", "kind", "max_amount", "daily_amount", "daily_count"]
    list_display = ["id", "user", "kind", "max_amount", "daily_amount", "daily_count", "created"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    sortable_by = ["id", "kind"]


def pending_for_customer(customer) -> list:
    """The customer's pending requests: on the customer itself or on one of its ledger rows."""
    q = Q(target_model=Customer._meta.label_lower, target_id=customer.pk)
    for model in (Stamp, BalanceUpdate, PointTransaction):
        rows = model.objects.filter(customer=customer).values("pk")
        q |= Q(target_model=model._meta.label_lower, target_id__in=rows)
    return list(
        Approval.objects.filter(
            q, status=PENDING, expires_at__gt=timezone.now(), merchant_id=customer.merchant_id
        )
        .select_related("requested_by")
        .order_by("-id")[:RECENT_REQUESTS]
    )


def pending_table(customer):
    """The customer page's section: its pending requests with links (the queue has the rest)."""
    rows = [
        (
            admin_link(a, f"#{a.pk}"),
            a.kind,
            a.size,
            a.requested_by,
            a.reason,
            a.created.strftime("%Y-%m-%d %H:%M"),
            a.expires_at.strftime("%Y-%m-%d %H:%M"),
        )
        for a in pending_for_customer(customer)
    ]
    return rows
