"""The audit log page for auditors and its streamed CSV export (`BackOfficeSite` routes them)."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts.models import Merchant
from ledger import history
from loyalty.audit import Channel

AUDIT_LOG_PAGE_SIZE = 50


class AuditLogFilterForm(forms.Form):
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
    actor = forms.CharField(
        required=False, max_length=150, help_text="Staff username or partner name."
    )
    channel = forms.ChoiceField(required=False, choices=[("", "Any"), *Channel.choices])
    model = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any"),
            *sorted(
                (
                    (label, history.model_name(model))
                    for label, model in history.AUDITED_MODELS.items()
                ),
                key=lambda choice: choice[1],
            ),
        ],
    )
    merchant = forms.ModelChoiceField(
        required=False, queryset=Merchant.objects.only("id", "name"), empty_label="Any"
    )
    q = forms.CharField(required=False, max_length=200, label="Reason contains")

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "must not be before From")
        return cleaned


def _query_from(
    request,
) -> tuple[AuditLogFilterForm, history.AuditFilters | None, history.Cursor | None]:
    """The form, and the filters and cursor position (`history.audit_query`, the check the
    staff API shares), or None and None with the errors on the form."""
    params = request.GET.copy()
    cursor = params.pop("cursor", [""])[-1]
    form = AuditLogFilterForm(params)
    if not form.is_valid():
        return form, None, None
    merchant = form.cleaned_data.get("merchant")
    try:
        filters, position = history.audit_query(
            {**form.cleaned_data, "merchant": merchant and merchant.pk, "cursor": cursor}
        )
    except history.InvalidQuery as exc:
        for field, message in exc.errors.items():
            form.add_error(field if field in form.fields else None, message)
        return form, None, None
    return form, filters, position


def _link_objects(request, site, versions) -> None:
    """Give each version the URL of its object's admin page (`admin_url`), where this user
    may view that model; None elsewhere (the template shows the name alone)."""
    urls = {}
    for label, model in history.AUDITED_MODELS.items():
        model_admin = site._registry.get(model)
        if model_admin is not None and model_admin.has_view_or_change_permission(request):
            opts = model._meta
            urls[label] = f"admin:{opts.app_label}_{opts.model_name}_change"
    for version in versions:
        name = urls.get(version.model)
        version.admin_url = (
            reverse(name, args=[version.object_id], current_app=site.name) if name else None
        )


_BATCH_ROW = re.compile(r"batch-([0-9]+):([0-9]+)")


def _link_batch_rows(site, versions) -> None:
    """For a change a correction batch's row made (request id `batch-<id>:<line>`), that row
    on its batch's page (`batch_url`, `batch_label`)."""
    for version in versions:
        version.batch_url = None
        batch_row = _BATCH_ROW.fullmatch(version.request_id or "")
        if batch_row:
            version.batch_url = (
                reverse(
                    "admin:ledger_correctionbatch_change",
                    args=[batch_row[1]],
                    current_app=site.name,
                )
                + "?"
                + urlencode({"line": batch_row[2]})
            )
            version.batch_label = f"batch #{batch_row[1]}, line {batch_row[2]}"


def _page(request, site, form, versions, next_cursor, cursor, status: int = 200):
    _link_batch_rows(site, versions)
    params = request.GET.copy()
    params.pop("cursor", None)
    next_url = None
    if next_cursor is not None:
        next_url = "?" + urlencode({**params.dict(), "cursor": next_cursor.encode()})
    context = {
        **site.each_context(request),
        "title": "Audit log",
        "subtitle": None,
        "form": form,
        "versions": versions,
        "next_url": next_url,
        "first_url": ("?" + params.urlencode()) if cursor is not None else None,
        "csv_url": reverse("admin:audit_log_csv", current_app=site.name)
        + ("?" + params.urlencode() if params else ""),
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/backoffice/audit_log.html", context, status=status)


def audit_log_view(request, site):
    if not history.can_read_history(request.user):
        raise PermissionDenied
    form, filters, cursor = _query_from(request)
    if filters is None:  # the form shows why
        return _page(request, site, form, [], None, None, status=400)
    versions, next_cursor = history.audit_log_page(
        filters, limit=AUDIT_LOG_PAGE_SIZE, cursor=cursor
    )
    _link_objects(request, site, versions)
    return _page(request, site, form, versions, next_cursor, cursor)


def audit_log_csv_view(request, site):
    """The filtered audit log as CSV, streamed in keyset batches (constant memory); with
    filters it cannot run, the audit log page saying why (400)."""
    if not history.can_read_history(request.user):
        raise PermissionDenied
    form, filters, _cursor = _query_from(request)
    if filters is None:
        return _page(request, site, form, [], None, None, status=400)
    response = StreamingHttpResponse(
        history.audit_log_csv(filters), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response
