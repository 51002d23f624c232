"""Stamp API, wire-compatible with Vivoldi's /api/stamp/v1/* (README, wire reference).

Every answer is the envelope {"code", "message", "result"}: code 0 is success; a business
refusal is HTTP 200 with the contract's code; invalid input is HTTP 400 with code 400.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.errors import AmbiguousCustomer
from accounts.selectors import customer_for_partner
from ledger import errors as ledger_errors
from ledger import services
from ledger.models import Stamp
from ledger.selectors import stamp_card_for_partner, stamp_for_partner
from loyalty.audit import Channel
from loyalty.errors import InvalidInput
from loyalty.http.limits import REASON_MAX
from loyalty.http.problems import ProblemResponse, handled
from loyalty.idempotency import idempotent
from partners.api.base import PartnerAPIView
from partners.api.fields import ContractIntegerField, YmdField, YNField, string, text
from partners.authentication import APIKeyAuthentication
from partners.schema import IDEMPOTENCY_KEY

BUSINESS_CODES = {
    "stamp_not_found": 1001,
    "stamp_count_zero": 1002,
    "stamp_inactive": 1003,
    "stamp_out_of_period": 1004,
    "stamp_at_max": 1005,
    "reward_redeemed": 1006,
    "correction_limit_reached": 1007,
}
# Kind to (envelope code, HTTP status); a kind missing here is answered 500.
STATUS = {
    "invalid": (400, 400),
    "malformed": (400, 400),
    "not_acceptable": (400, 400),
    "unsupported_media_type": (400, 400),
    "refused": (400, 400),  # a refusal without a code of its own in this API
    "unauthenticated": (401, 401),
    "forbidden": (401, 401),
    "not_found": (404, 404),
    "method": (405, 405),
    "conflict": (409, 409),
    "idempotency_in_flight": (409, 409),
    "too_large": (413, 413),
    "idempotency_reused": (1008, 422),
    "throttled": (429, 429),
}
# The services' field names as this API's wire names.
WIRE_NAMES = {"count": "stamps", "start_date": "strtYmd", "end_date": "endYmd"}


def envelope(code: int = 0, message: str = "", result=None, status: int = 200) -> Response:
    response_class = Response if code == 0 else ProblemResponse
    return response_class({"code": code, "message": message, "result": result}, status=status)


def stamp_exception_handler(exc, context) -> Response:
    problem = handled(exc).renamed(WIRE_NAMES)
    if problem.domain and problem.code in BUSINESS_CODES:
        return envelope(BUSINESS_CODES[problem.code], problem.message)
    if problem.kind == "http":
        code = status = problem.status
    else:
        code, status = STATUS.get(problem.kind, (500, 500))
    message = problem.message
    if code == 400 and problem.field:
        message = f"{problem.field}: {problem.message}"
    response = envelope(code, message, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "APIKey"
    return response


def stamp_result(stamp: Stamp) -> dict:
    return {
        "stampIdx": stamp.pk,
        "cardIdx": stamp.card_id,
        "cardNm": stamp.card.name,
        "stamps": stamp.count,
        "maxStamps": stamp.max_stamps,
        "strtYmd": stamp.start_date.isoformat(),
        "endYmd": stamp.end_date.isoformat(),
        "activeYn": "Y" if stamp.active else "N",
        "useYn": "Y" if stamp.redeemed else "N",
        "memo": stamp.memo,
        "userId": stamp.external_user_id,
        "userNm": stamp.external_user_name,
        "userPhnno": stamp.external_user_phone,
        "userEml": stamp.external_user_email,
        "customer": stamp.customer_id,
        "regYmdt": timezone.localtime(stamp.created).strftime("%Y-%m-%d %H:%M:%S"),
    }


class StampResultSerializer(serializers.Serializer):
    stampIdx = serializers.IntegerField()
    cardIdx = serializers.IntegerField()
    cardNm = serializers.CharField()
    stamps = serializers.IntegerField()
    maxStamps = serializers.IntegerField()
    strtYmd = serializers.CharField()
    endYmd = serializers.CharField()
    activeYn = serializers.CharField()
    useYn = serializers.CharField()
    memo = serializers.CharField()
    userId = serializers.CharField()
    userNm = serializers.CharField()
    userPhnno = serializers.CharField()
    userEml = serializers.CharField()
    customer = serializers.IntegerField()
    regYmdt = serializers.CharField()


class StampIdxSerializer(serializers.Serializer):
    stampIdx = ContractIntegerField()


class RemoveSerializer(StampIdxSerializer):
    reason = text(REASON_MAX)


class CreateSerializer(serializers.Serializer):
    cardIdx = ContractIntegerField()
    customer = string(254, help_text="Member ID or email of the customer.")
    strtYmd = YmdField()
    endYmd = YmdField()
    activeYn = YNField(required=False)
    memo = text(500)
    userId = text(100)
    userNm = text(100)
    userPhnno = text(40)
    userEml = text(254)


class UpdateSerializer(StampIdxSerializer):
    stamps = ContractIntegerField(min_value=0, max_value=10000, required=False)
    useYn = YNField(required=False)
    activeYn = YNField(required=False)
    strtYmd = YmdField(required=False)
    endYmd = YmdField(required=False)
    memo = string(500, allow_blank=True, required=False)
    reason = text(REASON_MAX)


def _envelope_schema(name: str, result=None):
    return inline_serializer(
        name=name,
        fields={
            "code": serializers.IntegerField(),
            "message": serializers.CharField(allow_blank=True),
            "result": result or serializers.JSONField(allow_null=True),
        },
    )


StampEnvelope = _envelope_schema("StampEnvelope")
# What the exception handler answers besides 200: invalid input (400), authentication (401),
# a body over 64 KiB (413), throttling (429) and, for writes, the Idempotency-Key refusals
# (409 in flight, 422 reused). Every one is the envelope with `result: null`.
READ_ERRORS = {status: StampEnvelope for status in (400, 401, 429)}
WRITE_ERRORS = {status: StampEnvelope for status in (400, 401, 409, 413, 422, 429)}


class StampView(PartnerAPIView):
    """Stamp API (Vivoldi-compatible). `Authorization: APIKey <key>`. Answers are
    `{"code", "message", "result"}`: code 0 is success; business refusals are HTTP 200 with
    codes 1001-1007; invalid input is HTTP 400 (code 400); a reused Idempotency-Key is HTTP
    422 (code 1008)."""

    authentication_classes = [APIKeyAuthentication]
    family_exception_handler = stamp_exception_handler

    def stamp(self, stamp_idx: int) -> Stamp:
        stamp = stamp_for_partner(self.merchant_ids, stamp_idx)
        if stamp is None:
            raise ledger_errors.StampNotFound()
        return stamp

    def stamp_from_query(self) -> Stamp:
        return self.stamp(self.input(StampIdxSerializer, self.request.query_params)["stampIdx"])


class StampCreateView(StampView):
    @extend_schema(
        tags=["Stamp API"],
        parameters=[IDEMPOTENCY_KEY],
        request=CreateSerializer,
        responses={
            200: _envelope_schema("StampCreateEnvelope", serializers.IntegerField()),
            **WRITE_ERRORS,
        },
        summary="Create a stamp (result: the new stampIdx)",
    )
    @idempotent
    def post(self, request):
        data = self.input(CreateSerializer)
        card = stamp_card_for_partner(self.merchant_ids, data["cardIdx"])
        if card is None:
            raise InvalidInput("cardIdx", "stamp card not found")
        try:
            customer = customer_for_partner(
                self.merchant_ids, merchant_id=card.merchant_id, user=data["customer"]
            )
        except AmbiguousCustomer as exc:
            raise InvalidInput("customer", exc.message) from exc
        if customer is None:
            raise InvalidInput("customer", "customer not found")
        stamp = services.stamp_create(
            actor=request.user,
            channel=Channel.STAMP_API,
            card=card,
            customer=customer,
            start_date=data["strtYmd"],
            end_date=data["endYmd"],
            active=data.get("activeYn", True),
            memo=data.get("memo", ""),
            external_user_id=data.get("userId", ""),
            external_user_name=data.get("userNm", ""),
            external_user_phone=data.get("userPhnno", ""),
            external_user_email=data.get("userEml", ""),
        )
        return envelope(result=stamp.pk)


class StampAddView(StampView):
    @extend_schema(
        tags=["Stamp API"],
        parameters=[IDEMPOTENCY_KEY],
        request=StampIdxSerializer,
        responses={200: StampEnvelope, **WRITE_ERRORS},
        summary="Add one stamp",
    )
    @idempotent
    def put(self, request):
        # The service finds the stamp among the partner's merchants as it locks it.
        services.stamp_add(
            actor=request.user,
            channel=Channel.STAMP_API,
            stamp=self.input(StampIdxSerializer)["stampIdx"],
            merchant_ids=self.merchant_ids,
        )
        return envelope()


class StampRemoveView(StampView):
    @extend_schema(
        tags=["Stamp API"],
        parameters=[IDEMPOTENCY_KEY],
        request=RemoveSerializer,
        responses={200: StampEnvelope, **WRITE_ERRORS},
        summary="Remove one stamp (a correction: never below 0, capped per stamp per day)",
    )
    @idempotent
    def put(self, request):
        data = self.input(RemoveSerializer)
        services.stamp_remove(
            actor=request.user,
            channel=Channel.STAMP_API,
            stamp=data["stampIdx"],  # found among the partner's merchants as it is locked
            reason=data.get("reason", ""),
            daily_cap=settings.STAMP_REMOVALS_PER_STAMP_PER_DAY,
            merchant_ids=self.merchant_ids,
        )
        return envelope()


class StampValidateView(StampView):
    @extend_schema(
        tags=["Stamp API"],
        parameters=[OpenApiParameter("stampIdx", int, required=True)],
        responses={
            200: _envelope_schema("StampValidateEnvelope", StampResultSerializer(allow_null=True)),
            **READ_ERRORS,
        },
        summary="Read a stamp",
    )
    def get(self, request):
        return envelope(result=stamp_result(self.stamp_from_query()))


class StampUpdateView(StampView):
    @extend_schema(
        tags=["Stamp API"],
        parameters=[IDEMPOTENCY_KEY],
        request=UpdateSerializer,
        responses={200: StampEnvelope, **WRITE_ERRORS},
        summary="Update a stamp (setting `stamps` is an audited correction)",
    )
    @idempotent
    def put(self, request):
        data = self.input(UpdateSerializer)
        stamp = self.stamp(data["stampIdx"])
        services.stamp_update(
            actor=request.user,
            channel=Channel.STAMP_API,
            stamp=stamp,
            count=data.get("stamps"),
            redeemed=data.get("useYn"),
            active=data.get("activeYn"),
            start_date=data.get("strtYmd"),
            end_date=data.get("endYmd"),
            memo=data.get("memo"),
            reason=data.get("reason", ""),
            daily_cap=settings.STAMP_REMOVALS_PER_STAMP_PER_DAY,
        )
        return envelope()


class StampDeleteView(StampView):
    @extend_schema(
        tags=["Stamp API"],
        parameters=[OpenApiParameter("stampIdx", int, required=True)],
        responses={200: StampEnvelope, **READ_ERRORS},
        summary="Deactivate and hide a stamp (its history is kept)",
    )
    def delete(self, request):
        services.stamp_deactivate(
            actor=request.user, channel=Channel.STAMP_API, stamp=self.stamp_from_query()
        )
        return envelope()
