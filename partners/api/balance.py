"""Balance API, wire-compatible with Stamps' /api/balances/* (README, wire reference).

Success: {"customer": {id, balance, status}, "balance_update": {id, amount, type, status,
created}}. Errors: {"detail", "error_message", "error_code", "errors"} with HTTP 400 (404 for
an unknown update in cancel, 422 for a reused Idempotency-Key); authentication: 401
{"detail"}.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.errors import (
    AmbiguousCustomer,
    CustomerNotFound,
    StoreNotFound,
    StoreOfAnotherMerchant,
)
from ledger import services
from ledger.models import BalanceUpdate
from ledger.selectors import balance_update_for_partner
from loyalty.audit import Channel
from loyalty.errors import DomainError
from loyalty.http.problems import ProblemResponse, handled
from loyalty.idempotency import idempotent
from partners.api.base import PartnerAPIView
from partners.api.fields import ContractIntegerField, string
from partners.authentication import PartnerTokenAuthentication
from partners.schema import IDEMPOTENCY_KEY


class BalanceAPIError(DomainError):
    """A refusal with the Balance API's own error_code and field."""

    def __init__(self, code: str, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.field, self.status = code, field, status


DOMAIN_FIELDS = {"insufficient_balance": "amount", "already_canceled": "id"}
# Kind to (HTTP status, error_code); "invalid" and the refusals use the problem's own code.
STATUS = {
    "invalid": (400, "invalid"),
    "malformed": (400, "invalid"),
    "not_acceptable": (400, "invalid"),
    "unsupported_media_type": (400, "invalid"),
    "refused": (400, ""),
    "not_found": (404, "not_found"),
    "method": (405, "method_not_allowed"),
    "conflict": (409, "conflict"),
    "idempotency_in_flight": (409, "idempotency_key_in_flight"),
    "too_large": (413, "request_too_large"),
    "idempotency_reused": (422, "idempotency_key_reused"),
    "throttled": (429, "throttled"),
}
AUTH_KINDS = {"unauthenticated", "forbidden"}
# The services' field names are this API's wire names already (amount, store, ...).
WIRE_NAMES: dict[str, str] = {}


def error(code: str, field: str, message: str, status: int = 400) -> Response:
    field = field or "__all__"
    detail = f"{field}: {message}" if field != "__all__" else message
    return ProblemResponse(
        {
            "detail": detail,
            "error_message": message,
            "error_code": code,
            "errors": {field: message},
        },
        status=status,
    )


def balance_exception_handler(exc, context) -> Response:
    problem = handled(exc).renamed(WIRE_NAMES)
    if isinstance(exc, BalanceAPIError):
        return error(exc.code, exc.field, exc.message, exc.status)
    if problem.kind in AUTH_KINDS:
        response = ProblemResponse({"detail": problem.message}, status=401)
        response["WWW-Authenticate"] = "Token"
        return response
    if problem.domain and problem.kind in ("refused", "conflict", "not_found"):
        field = DOMAIN_FIELDS.get(problem.code, problem.field)
        return error(problem.code, field, problem.message)
    if problem.kind == "http":
        return error(problem.code, "", problem.message, problem.status)
    status, code = STATUS.get(problem.kind, (500, "internal_error"))
    if problem.kind == "invalid":
        code = "required" if problem.rule == "required" else "invalid"
        return error(code, problem.field, problem.message)
    field = problem.field if status == 400 else ""
    return error(code, field, problem.message, status)


def success(update: BalanceUpdate) -> Response:
    customer = update.customer
    return Response(
        {
            "customer": {"id": customer.pk, "balance": customer.balance, "status": customer.status},
            "balance_update": {
                "id": update.pk,
                "amount": update.amount,
                "type": update.type,
                "status": update.status,
                "created": update.created.isoformat(),
            },
        }
    )


class MoveSerializer(serializers.Serializer):
    user = string(254, help_text="Email or member ID of the customer.")
    amount = ContractIntegerField()
    type = string(required=False, default=BalanceUpdate.TYPE_STAMPS)
    merchant = ContractIntegerField()
    store = ContractIntegerField()

    def validate_type(self, value: str) -> str:
        if value != BalanceUpdate.TYPE_STAMPS:
            raise serializers.ValidationError('the only balance type is "stamps"')
        return value


class CancelSerializer(serializers.Serializer):
    id = ContractIntegerField()


SuccessSchema = inline_serializer(
    name="BalanceUpdateResult",
    fields={
        "customer": inline_serializer(
            name="BalanceCustomer",
            fields={
                "id": serializers.IntegerField(),
                "balance": serializers.IntegerField(),
                "status": serializers.CharField(),
            },
        ),
        "balance_update": inline_serializer(
            name="BalanceUpdateSummary",
            fields={
                "id": serializers.IntegerField(),
                "amount": serializers.IntegerField(),
                "type": serializers.CharField(),
                "status": serializers.ChoiceField(["Success", "Canceled"]),
                "created": serializers.DateTimeField(),
            },
        ),
    },
)
ErrorSchema = inline_serializer(
    name="BalanceError",
    fields={
        "detail": serializers.CharField(),
        "error_message": serializers.CharField(),
        "error_code": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.CharField()),
    },
)

AuthErrorSchema = inline_serializer(
    name="BalanceAuthError", fields={"detail": serializers.CharField()}
)
# Besides each endpoint's own answers: authentication (401, `{"detail"}`), a body over 64 KiB
# (413), an Idempotency-Key still in flight (409) or reused (422), throttling (429).
ERRORS = {
    400: ErrorSchema,
    401: AuthErrorSchema,
    409: ErrorSchema,
    413: ErrorSchema,
    422: ErrorSchema,
    429: ErrorSchema,
}


class BalanceView(PartnerAPIView):
    """Balance API (Stamps-compatible). `Authorization: Token <key>` or `Bearer <key>`.
    Errors are `{"detail", "error_message", "error_code", "errors"}`."""

    authentication_classes = [PartnerTokenAuthentication]
    family_exception_handler = balance_exception_handler
    operation = None

    def move(self, request, operation):
        data = self.input(MoveSerializer)
        merchant_id = data["merchant"]
        if merchant_id not in self.merchant_ids:
            raise BalanceAPIError("invalid_merchant", "merchant", "merchant not found")
        at = services.AtStore(self.merchant_ids, merchant_id, data["user"], data["store"])
        try:
            update = operation(
                actor=request.user, channel=Channel.BALANCE_API, at=at, amount=data["amount"]
            )
        except StoreNotFound as exc:
            raise BalanceAPIError("store_not_found", "store", "store not found") from exc
        except StoreOfAnotherMerchant as exc:
            raise BalanceAPIError(
                "invalid_store", "store", "store does not belong to merchant"
            ) from exc
        except AmbiguousCustomer as exc:
            raise BalanceAPIError("invalid_data", "user", exc.message) from exc
        except CustomerNotFound as exc:
            raise BalanceAPIError("invalid_data", "user", "user not found") from exc
        return success(update)


_move_schema = extend_schema(
    tags=["Balance API"],
    parameters=[IDEMPOTENCY_KEY],
    request=MoveSerializer,
    responses={200: SuccessSchema, **ERRORS},
)


class BalanceCreditView(BalanceView):
    @_move_schema
    @idempotent
    def post(self, request):
        return self.move(request, services.balance_credit)


class BalanceDebitView(BalanceView):
    @_move_schema
    @idempotent
    def post(self, request):
        return self.move(request, services.balance_debit)


class BalanceCancelView(BalanceView):
    @extend_schema(
        tags=["Balance API"],
        parameters=[IDEMPOTENCY_KEY],
        request=CancelSerializer,
        responses={200: SuccessSchema, **ERRORS, 404: ErrorSchema},
    )
    @idempotent
    def post(self, request):
        data = self.input(CancelSerializer)
        update = balance_update_for_partner(self.merchant_ids, data["id"])
        if update is None:
            raise BalanceAPIError("not_found", "id", "balance update not found", status=404)
        update = services.balance_update_cancel(
            actor=request.user, channel=Channel.BALANCE_API, balance_update=update
        )
        return success(update)
