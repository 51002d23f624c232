"""Staff API for bulk corrections: `correction-batches/` (upload and preview, list, progress),
`rows/` (the preview and the report, JSON or CSV) and `apply/` (README: Bulk corrections).

Uploads (multipart CSV or JSON rows) may be up to 20 MiB here, and only here: the parsers
below read past the 64 KiB limit of every other endpoint.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django_filters import rest_framework as django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.models import Merchant
from ledger import batches
from ledger.api.fields import ContractIntegerField, reason_field
from ledger.api.filters import IdFilter
from ledger.api.pagination import StaffCursorPagination
from ledger.api.serializers import ApprovalSerializer
from ledger.api.views import CHANNEL, CSVRenderer, StaffViewSet, perm
from ledger.models import CorrectionBatch, CorrectionBatchRow
from loyalty.http.body import parse_json
from loyalty.http.limits import MAX_UPLOAD_BYTES


class UploadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = f"The upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB."
    default_code = "body_too_large"


def _check_length(request) -> None:
    django_request = getattr(request, "_request", request)
    try:
        length = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_UPLOAD_BYTES:
        raise UploadTooLarge()


class BatchJSONParser(BaseParser):
    """JSON rows up to 20 MiB (the shared reader's checks: UTF-8, no NaN, depth)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        _check_length(request)
        raw = stream.read(MAX_UPLOAD_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_UPLOAD_BYTES:
            raise UploadTooLarge()
        if not raw.strip():
            return {}
        value = parse_json(raw)
        if not isinstance(value, dict):
            raise exceptions.ParseError("The body must be a JSON object.")
        return value


class BatchMultiPartParser(MultiPartParser):
    """A CSV upload up to 20 MiB (the file goes to a temporary file past 2.5 MB)."""

    def parse(self, stream, media_type=None, parser_context=None):
        _check_length(parser_context["request"])
        return super().parse(stream, media_type, parser_context)


# --- serializers ---------------------------------------------------------------------------


class CorrectionBatchSerializer(serializers.Serializer):
    """A batch (`ledger.batches.progress` renders it)."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CorrectionBatch.Status.choices)
    merchant = serializers.IntegerField()
    reason = serializers.CharField()
    source = serializers.CharField(help_text='"csv" or "json"')
    filename = serializers.CharField()
    total = serializers.IntegerField()
    ready = serializers.IntegerField()
    invalid = serializers.IntegerField()
    applied = serializers.IntegerField()
    refused = serializers.IntegerField()
    size = serializers.IntegerField(help_text="The sum of the ready rows' sizes (approvals).")
    created_by = serializers.CharField()
    created = serializers.DateTimeField()
    apply_requested_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    approval = ApprovalSerializer(allow_null=True)

    def to_representation(self, instance):
        return batches.progress(instance)


class CorrectionBatchRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    kind = serializers.CharField()
    target = serializers.CharField()
    amount = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=CorrectionBatchRow.Status.choices)
    before = serializers.IntegerField(allow_null=True)
    after = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)

    def to_representation(self, instance):
        return batches.row_data(instance)


class CorrectionBatchInputSerializer(serializers.Serializer):
    merchant = ContractIntegerField(min_value=1, max_value=2**63 - 1)
    reason = reason_field()
    rows = serializers.JSONField(
        required=False, help_text="JSON rows: [{kind, target, amount?, reason?}, ...]"
    )
    file = serializers.FileField(
        required=False, help_text="multipart: a CSV file (UTF-8, header kind,target,...)"
    )

    def validate_merchant(self, value):
        merchant = Merchant.objects.filter(pk=value).first()
        if merchant is None:
            raise ValidationError("No such merchant.")
        return merchant

    def validate(self, attrs):
        if ("rows" in attrs) == ("file" in attrs):
            raise ValidationError({"file": ["Send either a CSV `file` or JSON `rows`."]})
        return attrs


class ApplyAnswerSerializer(serializers.Serializer):
    batch = CorrectionBatchSerializer()
    approval = ApprovalSerializer(required=False)


# --- views ---------------------------------------------------------------------------------


class CorrectionBatchFilter(django_filters.FilterSet):
    merchant = IdFilter(field_name="merchant_id")
    status = django_filters.ChoiceFilter(choices=CorrectionBatch.Status.choices)
    created_by = django_filters.CharFilter(field_name="created_by__username", max_length=150)

    class Meta:
        model = CorrectionBatch
        fields = ["merchant", "status", "created_by"]


class RowFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=CorrectionBatchRow.Status.choices)

    class Meta:
        model = CorrectionBatchRow
        fields = ["status"]


class RowPagination(StaffCursorPagination):
    """Rows in line order."""

    ordering = "line"
    page_size = 100
    max_page_size = 1000


ROW_QUERY = [
    OpenApiParameter("status", str, enum=CorrectionBatchRow.Status.values),
    OpenApiParameter("format", str, enum=["json", "csv"], description="csv: the report."),
]


@extend_schema_view(
    list=extend_schema(summary="List correction batches", responses=CorrectionBatchSerializer),
    retrieve=extend_schema(
        summary="One correction batch and its progress", responses=CorrectionBatchSerializer
    ),
)
class CorrectionBatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    """Reading needs `view_correctionbatch` (Support, Supervisor, Auditor); uploading and
    applying `add_correctionbatch` (Support, Supervisor), and applying being its creator
    (or a superuser)."""

    queryset = CorrectionBatch.objects.select_related(
        "created_by", "approval__requested_by", "approval__decided_by"
    )
    serializer_class = CorrectionBatchSerializer
    filterset_class = CorrectionBatchFilter
    action_permissions = {
        "create": [perm(CorrectionBatch, "add")],
        "apply": [perm(CorrectionBatch, "add")],
    }

    # Only `create` reads a body (`apply` takes none).
    parser_classes = [BatchJSONParser, BatchMultiPartParser]

    @extend_schema(
        summary="Upload a file of corrections (CSV multipart or JSON rows) and preview it",
        request={
            "application/json": CorrectionBatchInputSerializer,
            "multipart/form-data": CorrectionBatchInputSerializer,
        },
        responses={201: CorrectionBatchSerializer},
    )
    def create(self, request):
        data = CorrectionBatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        upload = fields.get("file")
        batch = batches.create_batch(
            actor=request.user,
            channel=CHANNEL,
            merchant=fields["merchant"],
            reason=fields["reason"],
            file=upload,
            rows=fields.get("rows"),
            filename=getattr(upload, "name", "") or "",
        )
        batch = self.get_queryset().get(pk=batch.pk)
        return Response(batches.progress(batch), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The batch's rows: the preview, then the report (`?format=csv`)",
        parameters=ROW_QUERY,
        responses={
            200: CorrectionBatchRowSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description=", ".join(batches.REPORT_COLUMNS)
            ),
        },
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        filter_backends=[],
        renderer_classes=[JSONRenderer, CSVRenderer],
        pagination_class=RowPagination,
    )
    def rows(self, request, pk=None):
        batch = self.get_object()
        query = RowFilter(request.query_params, queryset=CorrectionBatchRow.objects.none())
        if not query.is_valid():
            raise ValidationError(query.errors)
        wanted = query.form.cleaned_data.get("status") or None
        if request.query_params.get("format") == "csv":
            response = StreamingHttpResponse(
                batches.report_csv(batch, wanted), content_type="text/csv; charset=utf-8"
            )
            name = f"correction-batch-{batch.pk}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        page = self.paginate_queryset(batches.report_rows(batch, wanted))
        return self.get_paginated_response([batches.row_data(row) for row in page])

    def perform_content_negotiation(self, request, force=False):
        # Error bodies are always JSON, whatever `format` asks for.
        if self.action == "rows":
            return JSONRenderer(), JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        summary="Apply the batch once (by the worker), or hold it for approval",
        request=None,
        responses={
            202: OpenApiResponse(
                ApplyAnswerSerializer,
                description="Queued for the worker; with `approval`: held (README: Approvals).",
            )
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def apply(self, request, pk=None):
        batch = self.get_object()
        applied = batches.apply_batch(batch, request.user, channel=CHANNEL)
        body = {"batch": batches.progress(self.get_queryset().get(pk=applied.batch.pk))}
        if applied.approval is not None:
            body["approval"] = body["batch"]["approval"]
        return Response(body, status=status.HTTP_202_ACCEPTED)
