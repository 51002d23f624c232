"""The audit log page for auditors and its streamed CSV export (`BackOfficeSite` routes them)."""

from __future__ import annotations

import datetime as dt

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
        choices=[("", "Any"), *[(label, label) for label in sorted(history.AUDITED_MODELS)]],
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

    def filters(self) -> history.AuditFilters:
        data = self.cleaned_data

        def start_of(day: dt.date | None) -> dt.datetime | None:
            if day is None:
                return None
            return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

        until = data.get("until")
        return history.AuditFilters(
            since=start_of(data.get("since")),
            until=start_of(until + dt.timedelta(days=1)) if until else None,
            actor=data.get("actor", "").strip(),
            channel=data.get("channel", ""),
            model=data.get("model", ""),
            merchant=data["merchant"].pk if data.get("merchant") else None,
            q=data.get("q", "").strip(),
        )


def _filters_from(request) -> tuple[AuditLogFilterForm, history.AuditFilters | None]:
    params = request.GET.copy()
    params.pop("cursor", None)
    form = AuditLogFilterForm(params)
    return form, form.filters() if form.is_valid() else None


def audit_log_view(request, site):
    if not history.can_read_history(request.user):
        raise PermissionDenied
    form, filters = _filters_from(request)
    cursor = history.Cursor.decode(request.GET.get("cursor", "")) or None
    versions, next_cursor = (
        history.audit_log_page(filters, limit=AUDIT_LOG_PAGE_SIZE, cursor=cursor)
        if filters is not None
        else ([], None)
    )
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
    return TemplateResponse(request, "admin/backoffice/audit_log.html", context)


def audit_log_csv_view(request, site):
    """The filtered audit log as CSV, streamed in keyset batches (constant memory)."""
    if not history.can_read_history(request.user):
        raise PermissionDenied
    _form, filters = _filters_from(request)
    if filters is None:
        filters = history.AuditFilters(since=timezone.now())  # invalid filters: headers only
    response = StreamingHttpResponse(
        history.audit_log_csv(filters), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response
