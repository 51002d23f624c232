"""Staff REST API viewsets (/api/v1/): reads, creates, corrections with preview and
Idempotency-Key, per-object history and the audit log.

Views only parse input, call a service and render its result (STYLE.md). Staff see every
merchant, so the querysets are not scoped further; authorization is per action, by Django
permission (see `required_permissions`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Customer, Merchant, Store
from accounts.services import customer_create, customer_update
from ledger import history, services
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

    authentication_classes = [TokenAuthentication, SessionAuthentication]
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
    other actions add what `action_permissions` names (e.g. `ledger.remove_stamp`).
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

    def correct(
        self,
        request,
        input_class: type[serializers.serializers.Serializer],
        apply: Callable[[Model, dict], object],
        render: Callable[[object, bool], dict],
    ) -> Response:
        """Validate, then either preview (run and roll back) or apply under Idempotency-Key."""
        serializer = input_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["preview"]:
            obj = self.get_object()
            response = Response(render(dry_run(lambda: apply(obj, data)), True))
            response["Preview"] = "true"
            return response
        return self._apply(request, lambda: Response(render(apply(self.get_object(), data), False)))

    @idempotent
    def _apply(self, request, operation: Callable[[], Response]) -> Response:
        return operation()


def _read_only_schema(noun: str):
    return extend_schema_view(
        list=extend_schema(summary=f"List {noun}"),
        retrieve=extend_schema(summary=f"One of the {noun}"),
    )


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


@_read_only_schema("customers")
class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Customer.objects.all()
    serializer_class = serializers.CustomerSerializer
    filterset_class = filters.CustomerFilter
    action_permissions = {
        "create": [perm(Customer, "add")],
        "partial_update": [perm(Customer, "change")],
        "adjust_balance": ["accounts.adjust_balance_customer"],
        "adjust_points": ["accounts.adjust_points_customer"],
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

    @extend_schema(
        summary="Correct the balance by a signed amount (a new balance update)",
        request=serializers.AdjustInputSerializer,
        responses={200: serializers.CustomerBalanceAdjustedSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"], url_path="adjust-balance", filter_backends=[])
    def adjust_balance(self, request, pk=None):
        def apply(customer, data):
            return services.balance_adjust(
                actor=request.user,
                channel=CHANNEL,
                customer=customer,
                amount=data["amount"],
                reason=data["reason"],
            )

        def render(update: BalanceUpdate, preview: bool) -> dict:
            customer = update.customer
            customer.balance_update = update
            data = serializers.CustomerBalanceAdjustedSerializer(customer).data
            if preview:
                data["balance_update"]["id"] = None
            return data

        return self.correct(request, serializers.AdjustInputSerializer, apply, render)

    @extend_schema(
        summary="Correct the points by a signed amount (a new point transaction)",
        request=serializers.AdjustInputSerializer,
        responses={200: serializers.CustomerPointsAdjustedSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"], url_path="adjust-points", filter_backends=[])
    def adjust_points(self, request, pk=None):
        def apply(customer, data):
            return services.points_adjust(
                actor=request.user,
                channel=CHANNEL,
                customer=customer,
                amount=data["amount"],
                reason=data["reason"],
            )

        def render(txn: PointTransaction, preview: bool) -> dict:
            customer = txn.customer
            customer.point_transaction = txn
            data = serializers.CustomerPointsAdjustedSerializer(customer).data
            if preview:
                data["point_transaction"].update(id=None, partner_transaction_id=None)
            return data

        return self.correct(request, serializers.AdjustInputSerializer, apply, render)


@_read_only_schema("stamps")
class StampViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    """Stamps, deleted ones included (`deleted_at` set): staff see everything."""

    queryset = Stamp.objects.all()
    serializer_class = serializers.StampSerializer
    filterset_class = filters.StampFilter
    action_permissions = {"deduct": ["ledger.remove_stamp"]}

    @extend_schema(
        summary="Take one stamp off (never below 0)",
        request=serializers.ReasonInputSerializer,
        responses={200: serializers.StampSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def deduct(self, request, pk=None):
        def apply(stamp, data):
            return services.stamp_remove(
                actor=request.user, channel=CHANNEL, stamp=stamp, reason=data["reason"]
            )

        def render(stamp: Stamp, preview: bool) -> dict:
            return serializers.StampSerializer(stamp).data

        return self.correct(request, serializers.ReasonInputSerializer, apply, render)


@_read_only_schema("balance updates")
class BalanceUpdateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = BalanceUpdate.objects.select_related("canceled_by")
    serializer_class = serializers.BalanceUpdateSerializer
    filterset_class = filters.BalanceUpdateFilter
    action_permissions = {"cancel": ["ledger.cancel_balanceupdate"]}

    @extend_schema(
        summary="Cancel a balance update once (the balance never goes below 0)",
        request=serializers.ReasonInputSerializer,
        responses={200: serializers.BalanceUpdateSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        def apply(update, data):
            return services.balance_update_cancel(
                actor=request.user, channel=CHANNEL, balance_update=update, reason=data["reason"]
            )

        def render(update: BalanceUpdate, preview: bool) -> dict:
            return serializers.BalanceUpdateSerializer(update).data

        return self.correct(request, serializers.ReasonInputSerializer, apply, render)


@_read_only_schema("point transactions")
class PointTransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = PointTransaction.objects.select_related("reverted_by")
    serializer_class = serializers.PointTransactionSerializer
    filterset_class = filters.PointTransactionFilter
    action_permissions = {"revert": ["ledger.revert_pointtransaction"]}

    @extend_schema(
        summary="Revert a point deduction once; answers with the new revert row",
        request=serializers.ReasonInputSerializer,
        responses={200: serializers.PointTransactionResultSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def revert(self, request, pk=None):
        def apply(deduction, data):
            return services.point_deduction_revert(
                actor=request.user, channel=CHANNEL, deduction=deduction, reason=data["reason"]
            )

        def render(txn: PointTransaction, preview: bool) -> dict:
            data = serializers.PointTransactionResultSerializer(txn).data
            if preview:
                data.update(id=None, partner_transaction_id=None)
            return data

        return self.correct(request, serializers.ReasonInputSerializer, apply, render)


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
