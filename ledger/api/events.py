"""Staff API event feed (`GET /api/v1/events/`): committed events, oldest first, by cursor."""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger import events, feed
from ledger.api.views import StaffAPIMixin

_ID = {"min_value": 1, "max_value": 2**63 - 1}


class EventQuerySerializer(serializers.Serializer):
    after = serializers.CharField(
        required=False, max_length=100, help_text="The cursor of a previous page's `next`."
    )
    merchant = serializers.IntegerField(required=False, **_ID)
    type = serializers.ChoiceField(required=False, choices=events.EVENT_TYPES)
    customer = serializers.IntegerField(required=False, **_ID)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)


class ActorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["staff", "partner", "system"])
    name = serializers.CharField()


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='Unique, "evt_..."; the webhook-id of its deliveries.')
    type = serializers.CharField()
    created = serializers.DateTimeField()
    merchant = serializers.IntegerField()
    customer = serializers.IntegerField(allow_null=True)
    customer_sequence = serializers.IntegerField(
        allow_null=True, help_text="The customer's ledger events 1, 2, 3, ... with no gap."
    )
    actor = ActorSerializer()
    channel = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    request_id = serializers.CharField(allow_null=True)
    data = serializers.DictField()


class EventPageSerializer(serializers.Serializer):
    next = serializers.URLField(
        help_text="Where to continue; at the end of the feed, the URL to poll again."
    )
    results = EventSerializer(many=True)


class EventFeedView(StaffAPIMixin, APIView):
    """Oldest first; following `next` sees every event exactly once."""

    def required_permissions(self) -> list[str]:
        return ["ledger.view_event"]

    @extend_schema(
        summary="The event feed, oldest first",
        parameters=[EventQuerySerializer],
        responses={200: EventPageSerializer},
    )
    def get(self, request):
        query = EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        after = None
        if "after" in params:
            after = feed.Cursor.decode(params["after"])
            if after is None:
                raise ValidationError({"after": ["Invalid cursor."]})
        page, cursor = feed.page(
            after=after,
            limit=params["page_size"],
            merchant=params.get("merchant"),
            type=params.get("type"),
            customer=params.get("customer"),
        )
        query_params = request.query_params.copy()
        query_params["after"] = cursor.encode()
        next_url = request.build_absolute_uri(
            request.path + "?" + urlencode(query_params, doseq=True)
        )
        return Response({"next": next_url, "results": [events.as_json(e) for e in page]})
