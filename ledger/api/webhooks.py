"""Staff API for webhooks: `webhook-endpoints/` (create, edit, rotate) and
`webhook-deliveries/` (read, redeliver).

Holders of `ledger.view_event` (Support, Auditor) read both, never a secret; creating,
editing, rotating and redelivering need `ledger.manage_webhookendpoint` (superusers).
"""

from __future__ import annotations

from django_filters import rest_framework as django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from ledger.api.filters import IdFilter
from ledger.api.views import StaffViewSet
from ledger.models.webhooks import WebhookDelivery, WebhookEndpoint
from ledger.webhooks import services
from ledger.webhooks.feed import EVENT_TYPES

VIEW = "ledger.view_event"
MANAGE = "ledger.manage_webhookendpoint"


class WebhookEndpointSerializer(serializers.ModelSerializer):
    merchant = serializers.IntegerField(source="merchant_id", read_only=True)
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "merchant", "event_types", "active", "description", "created"]
        read_only_fields = fields


class WebhookEndpointSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True)

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


EventTypes = serializers.ListField(
    child=serializers.CharField(max_length=40),
    min_length=1,
    help_text="Event types (" + ", ".join(EVENT_TYPES) + '), or ["*"] for every type.',
)


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    merchant = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    event_types = EventTypes
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=40), min_length=1, required=False
    )
    active = serializers.BooleanField(required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate(self, attrs):
        if "merchant" in self.initial_data:
            raise ValidationError({"merchant": ["An endpoint stays with its merchant."]})
        return attrs


class WebhookDeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.IntegerField(source="endpoint_id", read_only=True)
    event = serializers.CharField(source="event.event_id", read_only=True)
    type = serializers.CharField(source="event_type", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event",
            "type",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "last_attempt_at",
            "created",
        ]
        read_only_fields = fields


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = IdFilter(field_name="endpoint_id")
    status = django_filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)
    event = django_filters.CharFilter(field_name="event__event_id", max_length=40)

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event"]


class WebhooksViewSet(StaffViewSet):
    history = None  # endpoints and deliveries keep no version history

    def required_permissions(self) -> list[str]:
        if self.action in ("list", "retrieve"):
            # Managers read what they manage; readers of the feed read endpoints too.
            return [] if self.request.user.has_perm(MANAGE) else [VIEW]
        return [MANAGE]


class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WebhooksViewSet):
    queryset = WebhookEndpoint.objects.order_by("id")
    serializer_class = WebhookEndpointSerializer
    filterset_fields = ["merchant", "active"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(
        summary="Create an endpoint (its secret is shown only in this answer)",
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointSecretSerializer},
    )
    def create(self, request):
        data = WebhookEndpointCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        endpoint, secret = services.endpoint_create(
            merchant_id=params["merchant"],
            url=params["url"],
            event_types=params["event_types"],
            description=params.get("description"),
        )
        endpoint.secret = secret
        body = WebhookEndpointSecretSerializer(endpoint).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @extend_schema(
        summary="Edit url, event_types, active or description",
        request=WebhookEndpointUpdateSerializer,
        responses=WebhookEndpointSerializer,
    )
    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        data = WebhookEndpointUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint, **data.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(
        summary="A new secret; the previous one signs too for 24 hours",
        request=None,
        responses=inline_serializer("WebhookSecret", {"secret": serializers.CharField()}),
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        secret = services.endpoint_rotate_secret(self.get_object())
        return Response({"secret": secret}, headers={"Cache-Control": "no-store"})


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WebhooksViewSet):
    queryset = WebhookDelivery.objects.select_related("event").order_by("-id")
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter

    @extend_schema(
        summary="Queue a failed or succeeded delivery again (same webhook-id)",
        request=None,
        responses=WebhookDeliverySerializer,
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = services.delivery_redeliver(self.get_object())
        delivery = self.get_queryset().get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(delivery).data)
