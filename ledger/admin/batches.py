"""Bulk corrections from a file in the admin (README: Bulk corrections): upload, preview, apply.

The upload form (merchant, CSV file, reason) runs `ledger.batches.create_batch`; a file that
cannot be parsed is a form error naming its line, and nothing is created. The batch's page is
the preview, shaped like the single corrections' confirmation page: every row with its value
before and after (paginated, filtered by status), the counts, an Apply button for its creator
(or a superuser), then a `<progress>` bar that polls the batch's counts (`progress.json`)
while the worker applies it, and the report as CSV. Uploading and applying need
`ledger.add_correctionbatch` (Support, Supervisor); reading `view_correctionbatch` (Auditor
too). Nothing is edited or deleted here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from accounts.models import Merchant
from ledger import batches, corrections, services
from ledger.admin.base import BackOfficeAdmin, truncated
from ledger.models import CorrectionBatch, CorrectionBatchRow
from ledger.models.batches import counted_rows
from loyalty.audit import Channel
from loyalty.errors import DomainError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # as the staff API's uploads (CONTRACT section 9)
ROWS_PER_PAGE = 100
ADD = "ledger.add_correctionbatch"
VIEW = "ledger.view_correctionbatch"
RowStatus = CorrectionBatchRow.Status


class UploadForm(forms.Form):
    merchant = forms.ModelChoiceField(queryset=Merchant.objects.only("id", "name").order_by("name"))
    file = forms.FileField(
        help_text=(
            "CSV, UTF-8, header row first. Columns: kind, target, amount (adjustments only), "
            "reason (optional: the reason below otherwise). Kinds: "
            + ", ".join(corrections.BY_KIND)
            + ". At most 20 MiB and 100,000 rows."
        ),
    )
    reason = forms.CharField(
        min_length=services.REASON_MIN,
        max_length=services.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why (3 to 500 characters). Recorded in the history of every object changed.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB."
            )
        return upload


def _approval_link(approval_id: int) -> str:
    """The approval request's admin page when the approvals admin is installed."""
    try:
        url = reverse("admin:ledger_approval_change", args=[approval_id])
    except NoReverseMatch:
        return f"approval request #{approval_id}"
    return format_html('<a href="{}" id="approval-link">approval request #{}</a>', url, approval_id)


@admin.register(CorrectionBatch)
class CorrectionBatchAdmin(BackOfficeAdmin):
    # What, who, how many, status, when; the merchant is a filter, the reason on the page.
    list_display = ["id", "file_display", "rows_display", "status", "created_by", "created_display"]
    list_display_links = ["id"]
    list_filter = ["status", "merchant"]
    sortable_by = ["id", "status", "created_display"]
    list_select_related = ["merchant", "created_by"]
    search_fields = ["=id", "filename", "reason", "created_by__username"]
    ordering = ["-id"]
    upload_template = "admin/backoffice/correction_batch_upload.html"
    batch_template = "admin/backoffice/correction_batch.html"

    @admin.display(description="File")
    def file_display(self, obj):
        return truncated(obj.filename or f"{obj.source.upper()} rows", "s")

    @admin.display(description="Rows")
    def rows_display(self, obj):
        """ "120 rows: 118 ready, 2 invalid", then what applying did."""
        text = format_html(
            "{}: {} ready, {} invalid", counted_rows(obj.total), obj.ready, obj.invalid
        )
        if obj.applied or obj.refused:
            text = format_html(
                '{}<br><span class="quiet-line">{} applied, {} refused</span>',
                text,
                obj.applied,
                obj.refused,
            )
        return text

    # --- permissions: upload and apply with `add`, read with `view`, never change or delete --

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(VIEW) or request.user.has_perm(ADD)

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm(ADD)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def may_apply(self, request, batch: CorrectionBatch) -> bool:
        user = request.user
        return self.has_add_permission(request) and (
            user.is_superuser or batch.created_by_id == user.pk
        )

    # --- urls --------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/apply/",
                wrap(self.apply_view),
                name="ledger_correctionbatch_apply",
            ),
            path(
                "<path:object_id>/progress.json",
                wrap(self.progress_view),
                name="ledger_correctionbatch_progress",
            ),
            path(
                "<path:object_id>/report.csv",
                wrap(self.report_view),
                name="ledger_correctionbatch_report",
            ),
            *super().get_urls(),
        ]

    def _batch(self, request, object_id) -> CorrectionBatch | None:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return (
            self.get_queryset(request)
            .select_related(
                "merchant", "created_by", "approval__requested_by", "approval__decided_by"
            )
            .filter(pk=object_id if str(object_id).isdigit() else None)
            .first()
        )

    def _not_found(self, request, object_id):
        return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)

    # --- upload ------------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                batch = batches.create_batch(
                    actor=request.user,
                    channel=Channel.ADMIN,
                    merchant=form.cleaned_data["merchant"],
                    reason=form.cleaned_data["reason"],
                    file=upload,
                    filename=upload.name or "",
                )
            except batches.BatchParseError as exc:
                form.add_error("file", exc.message)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"Previewed {counted_rows(batch.total)}: {batch.ready} ready, {batch.invalid} "
                    "invalid. Nothing has moved yet: review the rows, then apply.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:ledger_correctionbatch_change", args=[batch.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload a file of corrections",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "kinds": [
                {
                    "kind": c.kind,
                    "label": c.label,
                    "takes_amount": c.takes_amount,
                    "target": c.target._meta.verbose_name,
                }
                for c in corrections.CORRECTIONS
            ],
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, self.upload_template, context, status=400 if form.is_bound else 200
        )

    # --- the batch's page: preview, apply, progress, result ------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self._batch(request, unquote(object_id))
        if batch is None:
            return self._not_found(request, object_id)
        status = request.GET.get("status") or ""
        if status not in RowStatus.values:
            status = ""
        rows = batches.report_rows(batch, status or None)
        line = request.GET.get("line", "")
        if line.isdigit():
            rows = rows.filter(line=int(line))
        paginator = Paginator(rows, ROWS_PER_PAGE)
        page = paginator.get_page(request.GET.get("p"))
        wire_status = batches.status_of(batch)
        progress = batches.progress(batch)
        done = progress["applied"] + progress["refused"]

        def page_url(number) -> str:
            return "?" + urlencode({k: v for k, v in (("status", status), ("p", number)) if v})

        context = {
            **self.admin_site.each_context(request),
            "title": f"Correction batch #{batch.pk}",
            "subtitle": None,
            "opts": self.opts,
            "original": batch,
            "batch": batch,
            "wire_status": wire_status,
            "progress": progress,
            "done": done,
            "page": page,
            "rows": [self._row(r) for r in page.object_list],
            "paginator": paginator,
            "previous_url": page_url(page.previous_page_number()) if page.has_previous() else None,
            "next_url": page_url(page.next_page_number()) if page.has_next() else None,
            "filters": [
                (label, value, "?" + urlencode({"status": value}) if value else "?")
                for label, value in [("All", ""), *((s.label, s.value) for s in RowStatus)]
            ],
            "status": status,
            "line": int(line) if line.isdigit() else None,
            "may_apply": self.may_apply(request, batch) and wire_status == "previewed",
            "approval_link": _approval_link(batch.approval_id) if batch.approval_id else None,
            "progress_url": reverse("admin:ledger_correctionbatch_progress", args=[batch.pk]),
            "apply_url": reverse("admin:ledger_correctionbatch_apply", args=[batch.pk]),
            "report_url": reverse("admin:ledger_correctionbatch_report", args=[batch.pk]),
            "history_url": reverse("admin:ledger_correctionbatch_history", args=[batch.pk]),
            "has_history": self.has_history_permission(request),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.batch_template, context)

    @staticmethod
    def _row(row: CorrectionBatchRow) -> dict:
        data = batches.row_data(row)
        data["target_link"] = row.target
        correction = corrections.BY_KIND.get(row.kind)
        if correction is not None and row.target_id is not None:
            opts = correction.target._meta
            try:
                url = reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.target_id]
                )
            except NoReverseMatch:
                url = None
            if url:
                data["target_link"] = format_html('<a href="{}">{}</a>', url, row.target)
        return data

    def apply_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission(request):
            raise PermissionDenied
        batch = self._batch(request, unquote(object_id))
        if batch is None:
            return self._not_found(request, object_id)
        if not self.may_apply(request, batch):
            raise PermissionDenied
        page = reverse("admin:ledger_correctionbatch_change", args=[batch.pk])
        try:
            applied = batches.apply_batch(batch, request.user, channel=Channel.ADMIN)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(page)
        if applied.approval is not None:
            self.message_user(
                request,
                format_html(
                    "This batch needs a second person's approval: {} (pending). Nothing moves "
                    "until a supervisor approves it.",
                    _approval_link(applied.approval.pk),
                ),
                messages.WARNING,
            )
        else:
            self.message_user(
                request,
                f"Applying {counted_rows(batch.ready, 'ready')}: the worker applies them in "
                "line order.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(page)

    def progress_view(self, request, object_id):
        batch = self._batch(request, unquote(object_id))
        if batch is None:
            return JsonResponse({"detail": "No such correction batch."}, status=404)
        data = batches.progress(batch)
        data["done"] = data["applied"] + data["refused"]
        return JsonResponse(data)  # admin_view: never cached

    def report_view(self, request, object_id):
        batch = self._batch(request, unquote(object_id))
        if batch is None:
            return self._not_found(request, object_id)
        status = request.GET.get("status") or None
        if status not in (None, *RowStatus.values):
            status = None
        response = StreamingHttpResponse(
            batches.report_csv(batch, status), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="correction-batch-{batch.pk}.csv"'
        return response
