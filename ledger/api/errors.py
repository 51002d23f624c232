"""The staff API's one error body, and the exception handler that maps every failure to it.

Body: {"code": "<stable code>", "message": "<human text>", "fields": {"<field>": ["..."]}}.
The handler always rolls the transaction back and never lets an exception become Django's
HTML 500 page: an unexpected error is logged and answered 500 in the same shape.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DataError, IntegrityError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from accounts import errors as account_errors
from ledger import errors as ledger_errors
from loyalty import idempotency
from loyalty.errors import DomainError, InvalidInput

logger = logging.getLogger("ledger.api")

# Domain errors that mean "no such object" (for the service's purpose).
NOT_FOUND = (
    ledger_errors.StampNotFound,
    ledger_errors.BalanceUpdateNotFound,
    ledger_errors.TransactionNotFound,
    account_errors.CustomerNotFound,
    account_errors.MerchantNotFound,
    account_errors.StoreNotFound,
)


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than 64 KiB."
    default_code = "body_too_large"


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"code": code, "message": message, "fields": fields or {}}


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF validation detail as {"field": ["message", ...]} (nested names joined by dots)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in _flatten(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        for item in detail:
            if isinstance(item, dict | list):
                for field, messages in _flatten(item, prefix).items():
                    out.setdefault(field, []).extend(messages)
            else:
                out.setdefault(prefix or "non_field_errors", []).append(str(item))
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def _validation_message(fields: dict[str, list[str]]) -> str:
    for field, messages in fields.items():
        if messages:
            return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return "Invalid input."


def classify(exc: Exception) -> tuple[int, dict]:
    """(HTTP status, body) of any exception a staff view can meet."""
    if isinstance(exc, idempotency.IdempotencyKeyInvalid):
        return 400, error_body(exc.code, exc.message, {idempotency.HEADER: [exc.message]})
    if isinstance(exc, idempotency.IdempotencyKeyReused):
        return 422, error_body(exc.code, exc.message)
    if isinstance(exc, idempotency.IdempotencyKeyInFlight):
        return 409, error_body(exc.code, exc.message)
    if isinstance(exc, ledger_errors.ReasonRequired):
        return 400, error_body(exc.code, exc.message, {"reason": [exc.message]})
    if isinstance(exc, InvalidInput):
        message = exc.message.split(": ", 1)[-1]
        return 400, error_body(exc.code, exc.message, {exc.field: [message]})
    if isinstance(exc, NOT_FOUND):
        return 404, error_body(exc.code, exc.message)
    if isinstance(exc, DomainError):
        # Business refusals: the object is not in a state that allows the operation.
        return 409, error_body(exc.code, exc.message)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        return 400, error_body("invalid", _validation_message(fields), fields)
    if isinstance(exc, exceptions.ParseError):
        return 400, error_body("parse_error", str(exc.detail))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return 401, error_body(exc.default_code, str(exc.detail))
    if isinstance(exc, exceptions.PermissionDenied | PermissionDenied):
        message = "You do not have permission to perform this action."
        if isinstance(exc, exceptions.PermissionDenied):
            message = str(exc.detail)
        return 403, error_body("permission_denied", message)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return 404, error_body("not_found", "Not found.")
    if isinstance(exc, exceptions.MethodNotAllowed):
        return 405, error_body("method_not_allowed", str(exc.detail))
    if isinstance(exc, exceptions.NotAcceptable):
        return 406, error_body("not_acceptable", str(exc.detail))
    if isinstance(exc, BodyTooLarge | RequestDataTooBig):
        return 413, error_body("body_too_large", BodyTooLarge.default_detail)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return 415, error_body("unsupported_media_type", str(exc.detail))
    if isinstance(exc, exceptions.Throttled):
        return 429, error_body("throttled", str(exc.detail))
    if isinstance(exc, exceptions.APIException):
        return exc.status_code, error_body(exc.default_code, str(exc.detail))
    if isinstance(exc, IntegrityError):
        # The database refused a write that would break an invariant (e.g. a race that a
        # service's own check could not see): nothing was written.
        logger.warning("integrity error in the staff API: %s", exc)
        return 409, error_body("conflict", "The change conflicts with the current state.")
    if isinstance(exc, DataError):
        # A value the database cannot hold slipped past validation: still the caller's input.
        logger.warning("data error in the staff API: %s", exc)
        return 400, error_body("invalid", "A value is out of range.")
    logger.exception("unexpected error in the staff API", exc_info=exc)
    return 500, error_body("internal", "Internal server error.")


def staff_exception_handler(exc: Exception, context) -> Response:
    set_rollback()
    status_code, body = classify(exc)
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    return Response(body, status=status_code, headers=headers)


@csrf_exempt
def not_found(request, *args, **kwargs) -> JsonResponse:
    """Any /api/v1/ path that names no endpoint: 404 in the staff API's shape."""
    message = "Not found."
    if not request.path.endswith("/"):
        message = "Not found. Staff API paths end with a slash."
    return JsonResponse(error_body("not_found", message), status=404)
