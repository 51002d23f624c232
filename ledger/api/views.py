"""Staff REST API viewsets (/api/v1/): reads, creates, corrections with preview and
Idempotency-Key, per-object history and the audit log.

Views only parse input, call a service and render its result. Staff see every
merchant, so the querysets are not scoped further; authorization is per action, by Django
permission (see `required_permissions`).

Longer than 400 lines on purpose: one viewset per resource, each a few lines over the shared
base classes, read best side by side; the logic they share lives in those bases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Model
from django.http import StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Customer, Merchant, Store
from accounts.services import customer_create, customer_update
from accounts.tokens import StaffTokenAuthentication
from ledger import approvals, corrections, history, services
from ledger.api import filters, serializers
from ledger.api.errors import staff_exception_handler
from ledger.api.pagination import StaffCursorPagination, StaffPagePagination
from ledger.api.parsers import StaffJSONParser
from ledger.api.permissions import StaffPermission
from ledger.api.schema import IDEMPOTENCY_KEY, StaffAutoSchema
from ledger.api.throttling import StaffRateThrottle
from ledger.models import BalanceUpdate, PointTransaction, Stamp, StampCard
from loyalty.audit import Channel
from loyalty.idempotency import idempotent
from loyalty.preview import dry_run
from partners.models import Partner

CHANNEL = Channel.STAFF_API


def perm(model: type[Model], verb: str) -> str:
    return f"{model._meta.app_label}.{verb}_{model._meta.model_name}"


def _versions_data(versions: Iterable[history.Version]) -> list[dict]:
    return [v.as_dict() for v in versions]


def _json_array_stream(versions: Iterable[history.Version]) -> StreamingHttpResponse:
    """A JSON array of versions, written as it is read (the same bytes JSONRenderer writes)."""
    renderer = JSONRenderer()

    def chunks() -> Iterator[bytes]:
        yield b"["
        for i, version in enumerate(versions):
            yield (b"," if i else b"") + renderer.render(version.as_dict())
        yield b"]"

    return StreamingHttpResponse(chunks(), content_type="application/json")


def _bounded_int(params, name: str, low: int, high: int, *, default):
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise ValidationError({name: [f"must be an integer from {low} to {high}"]})
    return int(raw)


class StaffAPIMixin:
    """What every staff endpoint shares: auth, permission, throttle, parsing, errors."""

    authentication_classes = [StaffTokenAuthentication, SessionAuthentication]
    permission_classes = [StaffPermission]
    throttle_classes = [StaffRateThrottle]
    parser_classes = [StaffJSONParser]
    renderer_classes = [JSONRenderer]
    metadata_class = None
    schema = StaffAutoSchema()

    def get_exception_handler(self):
        return staff_exception_handler


class StaffViewSet(StaffAPIMixin, viewsets.GenericViewSet):
    """Base of the resource viewsets.

    Permissions: reading needs `view_<model>`; history also `view_historical<model>`;
    a correction adds its registry permission (e.g. `ledger.remove_stamp`); other actions
    add what `action_permissions` names.
    """

    filter_backends = [DjangoFilterBackend]
    pagination_class = StaffCursorPagination
    lookup_value_regex = "[0-9]{1,18}"  # ids fit a bigint; anything else is a 404
    action_permissions: dict[str, list[str]] = {}

    @property
    def model(self) -> type[Model]:
        return self.queryset.model

    def required_permissions(self) -> list[str]:
        needed = [perm(self.model, "view")]
        if self.action == "history":
            meta = self.model._meta
            needed.append(f"{meta.app_label}.view_historical{meta.model_name}")
        needed.extend(self.action_permissions.get(self.action, []))
        correction = getattr(getattr(self, self.action or "", None), "correction", None)
        if correction is not None:
            needed.append(correction.permission)
        return needed

    @extend_schema(
        summary="Every version of this object, newest first",
        description=(
            "Without parameters, every version, streamed in constant memory however many "
            "there are. With `limit` (1 to 1000) and optionally `before` (a history_id): "
            'that many versions older than `before`, and a `Link: <...>; rel="next"` '
            "header while older ones remain."
        ),
        parameters=[
            OpenApiParameter("limit", int, description="Page size, 1 to 1000."),
            OpenApiParameter("before", int, description="Only versions older than this id."),
        ],
        responses=serializers.VersionSerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, pk=None):
        obj = self.get_object()
        params = request.query_params
        if "limit" not in params and "before" not in params:
            return _json_array_stream(history.iter_object_history(self.model, obj.pk))
        limit = _bounded_int(params, "limit", 1, 1000, default=100)
        before = _bounded_int(params, "before", 1, 2**63 - 1, default=None)
        versions, next_before = history.object_history_page(
            self.model, obj.pk, before=before, limit=limit
        )
        response = Response(_versions_data(versions))
        if next_before is not None:
            query = urlencode({"limit": limit, "before": next_before})
            response["Link"] = f'<{request.build_absolute_uri(request.path)}?{query}>; rel="next"'
        return response

    # --- corrections -----------------------------------------------------------------------

    def correct(self, request, endpoint: CorrectionEndpoint) -> Response:
        """Validate, then either preview (run and roll back) or apply under Idempotency-Key."""
        serializer = endpoint.input_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        arguments = {"reason": data["reason"], "amount": data.get("amount")}

        def apply(target: Model):
            return endpoint.correction.apply(
                actor=request.user, channel=CHANNEL, target=target, **arguments
            )

        if data["preview"]:
            obj = self.get_object()
            response = Response(endpoint.render(dry_run(lambda: apply(obj)), preview=True))
            response["Preview"] = "true"
            held = approvals.needs_approval(
                endpoint.correction, actor=request.user, target=obj, amount=arguments["amount"]
            )
            if held is not None:
                # The real call would answer 202 with an approval request (README).
                response["Approval-Required"] = held
            return response

        def submit() -> Response:
            submitted = approvals.submit(
                endpoint.correction,
                actor=request.user,
                channel=CHANNEL,
                target=self.get_object(),
                **arguments,
            )
            if submitted.held:
                body = {"approval": approvals.serialize(submitted.approval)}
                return Response(body, status=status.HTTP_202_ACCEPTED)
            return Response(endpoint.render(submitted.result, preview=False))

        return self._apply(request, submit)

    @idempotent
    def _apply(self, request, operation: Callable[[], Response]) -> Response:
        return operation()


def _read_only_schema(noun: str):
    return extend_schema_view(
        list=extend_schema(summary=f"List {noun}"),
        retrieve=extend_schema(summary=f"One of the {noun}"),
    )


@dataclass(frozen=True)
class CorrectionEndpoint:
    """How the staff API offers one correction of the registry: its action and its answer."""

    correction: corrections.Correction
    name: str  # the viewset action; its URL path is the name with "-" for "_"
    summary: str
    answer: type[serializers.serializers.Serializer]
    nest: str = ""  # adjustments answer the customer with the new row under this key

    @property
    def input_class(self) -> type[serializers.serializers.Serializer]:
        if self.correction.takes_amount:
            return serializers.AdjustInputSerializer
        return serializers.ReasonInputSerializer

    def render(self, result: Model, *, preview: bool) -> dict:
        subject = result
        if self.nest:
            subject = result.customer
            setattr(subject, self.nest, result)
        data = self.answer(subject).data
        if preview and self.correction.creates:
            # The new row was rolled back: it has no id, nor a reference anyone could use.
            row = data[self.nest] if self.nest else data
            row.update({key: None for key in NEW_ROW_REFERENCES if key in row})
        return data

    def viewset_action(self):
        """The viewset action: `@action` and its schema, running `StaffViewSet.correct`."""

        def handler(viewset, request, pk=None):
            return viewset.correct(request, self)

        handler.__name__ = self.name
        handler.correction = self.correction
        handler = action(
            detail=True, methods=["post"], url_path=self.name.replace("_", "-"), filter_backends=[]
        )(handler)
        return extend_schema(
            summary=self.summary,
            request=self.input_class,
            responses={
                200: self.answer,
                202: OpenApiResponse(
                    serializers.ApprovalEnvelopeSerializer,
                    description="Held for approval (README: Approvals): nothing moved.",
                ),
            },
            parameters=[IDEMPOTENCY_KEY],
        )(handler)


NEW_ROW_REFERENCES = ("id", "partner_transaction_id")

_BY_KIND = corrections.BY_KIND
CORRECTION_ENDPOINTS = {
    endpoint.correction.kind: endpoint
    for endpoint in [
        CorrectionEndpoint(
            _BY_KIND["deduct_stamp"],
            "deduct",
            "Take one stamp off (never below 0)",
            serializers.StampSerializer,
        ),
        CorrectionEndpoint(
            _BY_KIND["cancel_balance_update"],
            "cancel",
            "Cancel a balance update once (the balance never goes below 0)",
            serializers.BalanceUpdateSerializer,
        ),
        CorrectionEndpoint(
            _BY_KIND["revert_points"],
            "revert",
            "Revert a point deduction once; answers with the new revert row",
            serializers.PointTransactionResultSerializer,
        ),
        CorrectionEndpoint(
            _BY_KIND["adjust_balance"],
            "adjust_balance",
            "Correct the balance by a signed amount (a new balance update)",
            serializers.CustomerBalanceAdjustedSerializer,
            nest="balance_update",
        ),
        CorrectionEndpoint(
            _BY_KIND["adjust_points"],
            "adjust_points",
            "Correct the points by a signed amount (a new point transaction)",
            serializers.CustomerPointsAdjustedSerializer,
            nest="point_transaction",
        ),
    ]
}


def offers_corrections(viewset: type[StaffViewSet]) -> type[StaffViewSet]:
    """Class decorator: the viewset gets an action for every correction of its model."""
    for correction in corrections.for_target(viewset.queryset.model):
        endpoint = CORRECTION_ENDPOINTS[correction.kind]
        setattr(viewset, endpoint.name, endpoint.viewset_action())
    return viewset


@_read_only_schema("merchants")
class MerchantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Merchant.objects.order_by("id")
    serializer_class = serializers.MerchantSerializer
    filterset_class = filters.MerchantFilter
    pagination_class = StaffPagePagination


@_read_only_schema("stores")
class StoreViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Store.objects.order_by("id")
    serializer_class = serializers.StoreSerializer
    filterset_class = filters.StoreFilter
    pagination_class = StaffPagePagination


@_read_only_schema("stamp cards")
class StampCardViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = StampCard.objects.order_by("id")
    serializer_class = serializers.StampCardSerializer
    filterset_class = filters.StampCardFilter
    pagination_class = StaffPagePagination
    action_permissions = {"create": [perm(StampCard, "add")]}

    @extend_schema(
        summary="Create a stamp card",
        request=serializers.StampCardInputSerializer,
        responses={201: serializers.StampCardSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @idempotent
    def create(self, request):
        serializer = serializers.StampCardInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        card = services.stamp_card_create(
            actor=request.user, channel=CHANNEL, **serializer.validated_data
        )
        return Response(serializers.StampCardSerializer(card).data, status=status.HTTP_201_CREATED)


@offers_corrections
@_read_only_schema("customers")
class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Customer.objects.all()
    serializer_class = serializers.CustomerSerializer
    filterset_class = filters.CustomerFilter
    action_permissions = {
        "create": [perm(Customer, "add")],
        "partial_update": [perm(Customer, "change")],
    }

    @extend_schema(
        summary="Create a customer",
        request=serializers.CustomerInputSerializer,
        responses={201: serializers.CustomerSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @idempotent
    def create(self, request):
        serializer = serializers.CustomerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = customer_create(actor=request.user, channel=CHANNEL, **serializer.validated_data)
        return Response(
            serializers.CustomerSerializer(customer).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Edit a customer's identity fields (balance and points are read-only)",
        request=serializers.CustomerInputSerializer(partial=True),
        responses={200: serializers.CustomerSerializer},
    )
    def partial_update(self, request, pk=None):
        customer = self.get_object()
        serializer = serializers.CustomerInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        merchant = fields.pop("merchant", None)
        if merchant is not None and merchant.pk != customer.merchant_id:
            raise ValidationError({"merchant": ["A customer cannot move to another merchant."]})
        customer = customer_update(actor=request.user, channel=CHANNEL, customer=customer, **fields)
        return Response(serializers.CustomerSerializer(customer).data)


@offers_corrections
@_read_only_schema("stamps")
class StampViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    """Stamps, deleted ones included (`deleted_at` set): staff see everything."""

    queryset = Stamp.objects.all()
    serializer_class = serializers.StampSerializer
    filterset_class = filters.StampFilter


@offers_corrections
@_read_only_schema("balance updates")
class BalanceUpdateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = BalanceUpdate.objects.select_related("canceled_by")
    serializer_class = serializers.BalanceUpdateSerializer
    filterset_class = filters.BalanceUpdateFilter


@offers_corrections
@_read_only_schema("point transactions")
class PointTransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = PointTransaction.objects.select_related("reverted_by")
    serializer_class = serializers.PointTransactionSerializer
    filterset_class = filters.PointTransactionFilter


@_read_only_schema("partners")
class PartnerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Partner.objects.prefetch_related("merchants").order_by("id")
    serializer_class = serializers.PartnerSerializer
    filterset_class = filters.PartnerFilter
    pagination_class = StaffPagePagination


# --- audit log -----------------------------------------------------------------------------


class CSVRenderer(BaseRenderer):
    """Lets `?format=csv` through content negotiation; the view streams the CSV itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)  # errors only; never reached for CSV bodies


class AuditLogView(StaffAPIMixin, APIView):
    """Every version of every audited model, newest first, keyset-paginated; CSV export."""

    renderer_classes = [JSONRenderer, CSVRenderer]

    def required_permissions(self) -> list[str]:
        return list(history.HISTORY_PERMISSIONS)

    def perform_content_negotiation(self, request, force=False):
        # Error bodies are always JSON, whatever `format` asks for.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        summary="The audit log across all audited models",
        parameters=[serializers.AuditLogQuerySerializer],
        responses={
            200: serializers.AuditLogPageSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="With ?format=csv: " + ", ".join(history.CSV_COLUMNS)
            ),
        },
    )
    def get(self, request):
        query = serializers.AuditLogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        try:  # the admin's audit log runs the same check
            filters_, cursor = history.audit_query(params)
        except history.InvalidQuery as exc:
            raise ValidationError({f: [message] for f, message in exc.errors.items()}) from exc
        if params["format"] == "csv":
            return self._csv(filters_)
        versions, next_cursor = history.audit_log_page(
            filters_, limit=params["page_size"], cursor=cursor
        )
        next_url = None
        if next_cursor is not None:
            query_params = request.query_params.copy()
            query_params["cursor"] = next_cursor.encode()
            next_url = request.build_absolute_uri(
                request.path + "?" + urlencode(query_params, doseq=True)
            )
        return Response({"next": next_url, "results": _versions_data(versions)})

    def _csv(self, filters_: history.AuditFilters) -> StreamingHttpResponse:
        chunks = history.audit_log_csv(filters_)
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
        return response
