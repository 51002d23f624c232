"""Points API, wire-compatible with the YGG Redeem partner API (README, wire reference).

Requests are HMAC-signed (partners.authentication.HMACAuthentication); every HTTP 200 answer
is signed back in X-API-SIGNATURE over the request's method, path and X-API-REQUEST and the
body exactly as sent (canonical JSON). Errors: {"success": false, "errorCode",
"errorMessage"} with the contract's HTTP status, or 200 for credentials set to
"errors as HTTP 200".

Its four endpoints and their input serializers stay together (a little over 400 lines): they
share the signed-response path and the deduction look-ups, which splitting would scatter.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from functools import cached_property

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from accounts.errors import CustomerNotFound
from accounts.selectors import customer_by_wallet_for_partner
from ledger import errors as ledger_errors
from ledger import services
from ledger.models import PointTransaction
from ledger.selectors import deduction_for_partner
from loyalty.audit import Channel
from loyalty.db import Claim, claim
from loyalty.errors import DomainError
from loyalty.http.problems import ProblemResponse, handled
from loyalty.idempotency import HEADER as IDEMPOTENCY_HEADER
from loyalty.idempotency import idempotent
from partners import signing
from partners.api.base import PartnerAPIView
from partners.api.fields import ContractIntegerField, correction_reason, string
from partners.authentication import (
    HMACAuthentication,
    KnownCredentialRefusal,
    PointsAuthError,
    request_claim,
)
from partners.identity import PartnerIdentity
from partners.schema import IDEMPOTENCY_KEY, SIGNED_REQUEST


class PointsAPIError(DomainError):
    def __init__(self, error_code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.error_code, self.status = error_code, status
        self.extra: dict = {}


# Kind to (errorCode, HTTP status); a kind missing here is ERR-INTERNAL, 500.
KIND_CODES = {
    "invalid": ("ERR-INVALID-REQUEST", 400),
    "malformed": ("ERR-INVALID-REQUEST", 400),
    "not_acceptable": ("ERR-INVALID-REQUEST", 400),
    "unsupported_media_type": ("ERR-INVALID-REQUEST", 400),
    "refused": ("ERR-INVALID-REQUEST", 400),
    "unauthenticated": ("ERR-AUTH-FAILED", 401),
    "forbidden": ("ERR-AUTH-FAILED", 401),
    "not_found": ("ERR-TRANSACTION-NOT-FOUND", 404),
    "method": ("ERR-INVALID-REQUEST", 405),
    "conflict": ("ERR-DUPLICATE-REQUEST", 409),
    "idempotency_in_flight": ("ERR-DUPLICATE-REQUEST", 409),
    "too_large": ("ERR-INVALID-REQUEST", 413),
    "idempotency_reused": ("ERR-IDEMPOTENCY-KEY-REUSED", 422),
    "throttled": ("ERR-RATE-LIMITED", 429),
}
DOMAIN_CODES = {
    "insufficient_points": ("ERR-INSUFFICIENT-POINTS", 422),
    "duplicate_redemption": ("ERR-DUPLICATE-REQUEST", 409),
    "already_reverted": ("ERR-DUPLICATE-REQUEST", 409),
}
# The services' field names as this API's wire names.
WIRE_NAMES = {
    "points": "deductPoints",
    "redemption_id": "yggRedemptionId",
    "reason": "revertReason",
}
FIELD_KINDS = {"invalid", "malformed", "not_acceptable", "unsupported_media_type"}


def points_exception_handler(exc, context) -> Response:
    # `_auth`, not `auth`: the property would run authentication again for an exception
    # raised before it (content negotiation, say).
    identity = getattr(context.get("request"), "_auth", None)
    partner = identity.partner if isinstance(identity, PartnerIdentity) else None
    if isinstance(exc, KnownCredentialRefusal):
        # The key was found, so the credential's own settings apply from here on.
        partner, exc = exc.partner, exc.error
    problem = handled(exc).renamed(WIRE_NAMES)
    extra: dict = {}
    if isinstance(exc, PointsAuthError):
        code, status = exc.error_code, exc.status_code
    elif isinstance(exc, PointsAPIError):
        code, status, extra = exc.error_code, exc.status, exc.extra
    elif problem.domain and problem.code in DOMAIN_CODES:
        code, status = DOMAIN_CODES[problem.code]
        if isinstance(exc, ledger_errors.DuplicateRedemption):
            extra = {"partnerTransactionId": exc.original.partner_transaction_id}
        elif isinstance(exc, ledger_errors.AlreadyReverted):
            extra = {
                "partnerTransactionId": exc.revert.reverts.partner_transaction_id,
                "partnerRevertId": exc.revert.partner_transaction_id,
            }
    elif problem.kind == "http":
        code, status = "ERR-INVALID-REQUEST", problem.status
    else:
        code, status = KIND_CODES.get(problem.kind, ("ERR-INTERNAL", 500))
    message = problem.message
    if problem.kind in FIELD_KINDS and problem.field:
        message = f"{problem.field}: {problem.message}"
    body = {"success": False, "errorCode": code, "errorMessage": message, **extra}
    if partner is not None and partner.errors_as_200:
        status = 200
    return ProblemResponse(body, status=status)


def replayed() -> PointsAuthError:
    """The refusal of an X-API-REQUEST used before (the contract's last signature check)."""
    return PointsAuthError("ERR-DUPLICATE-REQUEST", "This X-API-REQUEST was already used.", 409)


class CanonicalJSONRenderer(BaseRenderer):
    """Renders exactly the canonical JSON that the response signature covers."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return b"" if data is None else signing.canonical_json(data).encode("utf-8")


class AddressSerializer(serializers.Serializer):
    address = string(100)


class DeductSerializer(serializers.Serializer):
    address = string(100)
    deductPoints = ContractIntegerField()
    yggRedemptionId = string(100)


class RevertSerializer(DeductSerializer):
    partnerTransactionId = string(40)
    revertReason = correction_reason(
        help_text="Why the deduction is reverted (3 to 500 characters); recorded in history."
    )


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "format": "decimal"}]})
class FlexibleDecimalField(serializers.Field):
    """A JSON number or numeric string, kept as a Decimal rounded to the column's scale (as
    PostgreSQL would round it); a value whose integer part the column cannot hold is a 400."""

    default_error_messages = {
        "invalid": "must be a number",
        "max_value": "must be less than 10^{digits} in absolute value",
    }

    def __init__(self, *, model_field: str, **kwargs) -> None:
        column = PointTransaction._meta.get_field(model_field)
        self.max_digits, self.decimal_places = column.max_digits, column.decimal_places
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid")
        try:
            value = Decimal(str(data))
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        digits = self.max_digits - self.decimal_places
        # Rounded here, not by the database: PostgreSQL refuses exponents beyond its numeric
        # format (1e-999999999) and integer parts beyond the precision (numeric overflow).
        with localcontext(prec=self.max_digits + 2, rounding=ROUND_HALF_UP):
            if not value.is_zero() and value.adjusted() >= digits:
                self.fail("max_value", digits=digits)
            value = value.quantize(Decimal(1).scaleb(-self.decimal_places))
            if not value.is_zero() and value.adjusted() >= digits:  # rounded up to 10^digits
                self.fail("max_value", digits=digits)
        return value

    def to_representation(self, value) -> str:
        return str(value)


@extend_schema_field({"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]})
class MomentField(serializers.Field):
    """An ISO 8601 timestamp or a Unix time in seconds or milliseconds, kept in UTC."""

    default_error_messages = {"invalid": "must be an ISO 8601 timestamp or a Unix time"}

    def to_internal_value(self, data) -> dt.datetime:
        if isinstance(data, int | float) and not isinstance(data, bool):
            seconds = data / 1000 if abs(data) > 10**11 else data
            try:
                return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
            except (OverflowError, OSError, ValueError):
                self.fail("invalid")
        if isinstance(data, str):
            try:
                moment = dt.datetime.fromisoformat(data.replace("Z", "+00:00"))
                # In UTC: PostgreSQL refuses the offsets beyond +/-15:59 that Python accepts,
                # and a moment whose UTC year is 0 or 10000 could be stored but never read
                # back into Python (astimezone raises OverflowError for those).
                return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(
                    dt.UTC
                )
            except (ValueError, OverflowError):
                self.fail("invalid")
        self.fail("invalid")

    def to_representation(self, value) -> str:
        return value.isoformat()


class ConfirmSerializer(serializers.Serializer):
    address = string(100)
    deductPoints = ContractIntegerField()
    usdAmount = FlexibleDecimalField(model_field="usd_amount")
    yggAmount = FlexibleDecimalField(model_field="ygg_amount")
    priceYggUsd = FlexibleDecimalField(model_field="price_ygg_usd")
    yggRedemptionId = string(100)
    status = serializers.ChoiceField(["claimed", "reverted"])
    txnConfirmed = serializers.BooleanField()
    txnHash = string(100, required=False, allow_blank=True, allow_null=True)
    initialAt = MomentField()
    pendingAt = MomentField()
    claimedAt = MomentField(required=False, allow_null=True)
    revertedAt = MomentField(required=False, allow_null=True)


def _schema(name: str, **fields):
    return inline_serializer(name=name, fields={"success": serializers.BooleanField(), **fields})


PointsError = _schema(
    "PointsError", errorCode=serializers.CharField(), errorMessage=serializers.CharField()
)
# The contract's error table, for every endpoint (a replayed X-API-REQUEST is 409 anywhere);
# writes add a body over 64 KiB (413) and ERR-INSUFFICIENT-POINTS or a reused
# Idempotency-Key (422).
READ_ERRORS = {status: PointsError for status in (400, 401, 404, 409, 429)}
WRITE_ERRORS = {status: PointsError for status in (400, 401, 404, 409, 413, 422, 429)}


class PointsView(PartnerAPIView):
    """Points API (YGG Redeem-compatible), HMAC-signed both ways. Acts on the partner's
    primary merchant. Errors are `{"success": false, "errorCode", "errorMessage"}`."""

    authentication_classes = [HMACAuthentication]
    renderer_classes = [CanonicalJSONRenderer]
    family_exception_handler = points_exception_handler
    # The view's move spends the request id in its own statement (see `spend_later`).
    spends_in_move = False

    @cached_property
    def request_claim(self) -> Claim | None:
        """The claim that spends this request's X-API-REQUEST (None before authentication
        succeeded: a refused request spends nothing)."""
        identity = getattr(self.request, "_auth", None)
        if not isinstance(identity, PartnerIdentity) or not identity.request_id:
            return None
        return request_claim(identity.partner, identity.request_id)

    def spend_later(self, request) -> bool:
        """Whether the move's statement spends the request id: for a view that moves in one
        statement, unless an Idempotency-Key puts the move inside a transaction that a
        refusal rolls back (then the id is spent first, alone)."""
        return self.spends_in_move and IDEMPOTENCY_HEADER not in request.headers

    def spend_request_id(self) -> None:
        """Spend the request id now, unless done; a replay is refused (409)."""
        claim_ = self.request_claim
        if claim_ is not None and claim_.taken is None:
            claim(claim_)
        if claim_ is not None and not claim_.taken:
            raise replayed()

    def perform_authentication(self, request) -> None:
        # The contract's last authentication check, the request id never seen, before the
        # permission and throttle checks (a throttled request has spent its id too).
        super().perform_authentication(request)
        if not self.spend_later(request):
            self.spend_request_id()

    def finalize_response(self, request, response, *args, **kwargs):
        if self.request_claim is not None and self.request_claim.taken is None:
            # Deferred to a move that did not run (the request was refused before it): the
            # id is spent now, and a replay answers 409 instead (nothing was changed).
            try:
                self.spend_request_id()
            except PointsAuthError as exc:
                response = self.handle_exception(exc)
        response = super().finalize_response(request, response, *args, **kwargs)
        # Only an authenticated request is answered signed (request.auth would authenticate
        # again; `_auth` is what authentication found, None after a refusal).
        identity = getattr(request, "_auth", None)
        secret = identity.hmac_secret if isinstance(identity, PartnerIdentity) else ""
        if response.status_code == 200 and secret and getattr(response, "data", None) is not None:
            response["X-API-SIGNATURE"] = signing.sign(
                secret,
                request.method,
                request.path,
                request.headers.get("X-API-REQUEST", ""),
                signing.canonical_json(response.data),
            )
        return response

    def customer(self, address: str):
        customer = customer_by_wallet_for_partner(self.partner, address)
        if customer is None:
            raise PointsAPIError("ERR-USER-NOT-FOUND", "User not found.", 404)
        return customer


class GetPointsView(PointsView):
    @extend_schema(
        tags=["Points API"],
        parameters=[OpenApiParameter("address", str, required=True), *SIGNED_REQUEST],
        responses={
            200: _schema(
                "PointsBalance",
                partnerUserId=serializers.CharField(),
                address=serializers.CharField(),
                points=serializers.IntegerField(),
                chain=serializers.CharField(),
            ),
            **READ_ERRORS,
        },
    )
    def get(self, request):
        address = self.input(AddressSerializer, request.query_params)["address"]
        customer = self.customer(address)
        return Response(
            {
                "success": True,
                "partnerUserId": str(customer.pk),
                "address": customer.wallet_address,
                "points": customer.points,
                "chain": self.partner.chain,
            }
        )


class DeductPointsView(PointsView):
    spends_in_move = True

    @extend_schema(
        tags=["Points API"],
        request=DeductSerializer,
        parameters=[*SIGNED_REQUEST, IDEMPOTENCY_KEY],
        responses={
            200: _schema("PointsDeducted", partnerTransactionId=serializers.CharField()),
            **WRITE_ERRORS,
        },
    )
    @idempotent
    def post(self, request):
        data = self.input(DeductSerializer)
        # One statement finds the customer, spends the request id (unless spent already)
        # and deducts (ledger.services.point_deduct).
        pending = self.request_claim if self.request_claim.taken is None else None
        try:
            txn = services.point_deduct(
                actor=request.user,
                channel=Channel.POINTS_API,
                partner=self.partner,
                address=data["address"],
                points=data["deductPoints"],
                redemption_id=data["yggRedemptionId"],
                claim=pending,
            )
        except ledger_errors.ClaimTaken:
            raise replayed() from None
        except CustomerNotFound:
            raise PointsAPIError("ERR-USER-NOT-FOUND", "User not found.", 404) from None
        return Response({"success": True, "partnerTransactionId": txn.partner_transaction_id})


class RevertDeductView(PointsView):
    @extend_schema(
        tags=["Points API"],
        request=RevertSerializer,
        parameters=[*SIGNED_REQUEST, IDEMPOTENCY_KEY],
        responses={
            200: _schema(
                "PointsReverted",
                partnerTransactionId=serializers.CharField(),
                partnerRevertId=serializers.CharField(),
            ),
            **WRITE_ERRORS,
        },
    )
    @idempotent
    def post(self, request):
        data = self.input(RevertSerializer)
        deduction = deduction_for_partner(
            self.partner, partner_transaction_id=data["partnerTransactionId"]
        )
        if deduction is None:
            raise PointsAPIError("ERR-TRANSACTION-NOT-FOUND", "Transaction not found.", 404)
        mismatched = [
            name
            for name, matches in (
                ("yggRedemptionId", deduction.redemption_id == data["yggRedemptionId"]),
                ("address", deduction.customer.wallet_address == data["address"].strip().lower()),
                ("deductPoints", -deduction.points == data["deductPoints"]),
            )
            if not matches
        ]
        if mismatched:
            raise PointsAPIError(
                "ERR-INVALID-REQUEST",
                f"{', '.join(mismatched)}: does not match the original deduction",
                400,
            )
        revert = services.point_deduction_revert(
            actor=request.user,
            channel=Channel.POINTS_API,
            deduction=deduction,
            reason=data["revertReason"],
        )
        return Response(
            {
                "success": True,
                "partnerTransactionId": deduction.partner_transaction_id,
                "partnerRevertId": revert.partner_transaction_id,
            }
        )


class ConfirmRedemptionView(PointsView):
    @extend_schema(
        tags=["Points API"],
        request=ConfirmSerializer,
        parameters=[*SIGNED_REQUEST, IDEMPOTENCY_KEY],
        responses={
            200: _schema("RedemptionConfirmed"),
            **WRITE_ERRORS,
        },
    )
    @idempotent
    def post(self, request):
        data = self.input(ConfirmSerializer)
        deduction = deduction_for_partner(self.partner, redemption_id=data["yggRedemptionId"])
        if deduction is None:
            raise PointsAPIError("ERR-TRANSACTION-NOT-FOUND", "Transaction not found.", 404)
        if (
            deduction.customer.wallet_address != data["address"].strip().lower()
            or -deduction.points != data["deductPoints"]
        ):
            raise PointsAPIError(
                "ERR-INVALID-REQUEST", "address, deductPoints: do not match the deduction", 400
            )
        services.point_deduction_confirm(
            actor=request.user,
            channel=Channel.POINTS_API,
            deduction=deduction,
            status=data["status"],
            usd_amount=data["usdAmount"],
            ygg_amount=data["yggAmount"],
            price_ygg_usd=data["priceYggUsd"],
            txn_confirmed=data["txnConfirmed"],
            txn_hash=data.get("txnHash") or "",
            initial_at=data["initialAt"],
            pending_at=data["pendingAt"],
            claimed_at=data.get("claimedAt"),
            reverted_at=data.get("revertedAt"),
        )
        return Response({"success": True})
