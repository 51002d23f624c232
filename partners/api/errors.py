"""Every exception a partner view can meet, classified once; each family renders the class.

The handlers roll the transaction back whatever happened, and nothing reaches Django's
500 page: an unexpected exception is logged and answered in the family's own shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.views import set_rollback

from loyalty import idempotency
from loyalty.errors import DomainError, InvalidInput
from partners.body import BodyTooLarge

logger = logging.getLogger("partners.api")


@dataclass
class Problem:
    kind: str  # validation | auth | forbidden | not_found | method | throttled | too_large |
    #            idempotency_reused | idempotency_in_flight | domain | internal
    status: int
    message: str
    field: str = ""
    code: str = ""  # the DRF or domain code
    exc: Exception | None = None


def _first_error(detail, prefix: str = "") -> tuple[str, str, str]:
    """(field, message, code) of the first error in a DRF ValidationError detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            return _first_error(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], prefix)
    code = getattr(detail, "code", "invalid") or "invalid"
    return prefix, str(detail), code


def classify(exc: Exception) -> Problem:
    if isinstance(exc, idempotency.IdempotencyKeyReused):
        return Problem("idempotency_reused", 422, exc.message, code=exc.code, exc=exc)
    if isinstance(exc, idempotency.IdempotencyKeyInFlight):
        return Problem("idempotency_in_flight", 409, exc.message, code=exc.code, exc=exc)
    if isinstance(exc, idempotency.IdempotencyKeyInvalid):
        return Problem("validation", 400, exc.message, "Idempotency-Key", "invalid", exc)
    if isinstance(exc, InvalidInput):
        return Problem("validation", 400, exc.message.split(": ", 1)[-1], exc.field, "invalid", exc)
    if isinstance(exc, DomainError):
        return Problem("domain", 400, exc.message, code=exc.code, exc=exc)
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_error(exc.detail)
        return Problem("validation", 400, message, field or "body", code, exc)
    if isinstance(exc, exceptions.ParseError):
        return Problem("validation", 400, str(exc.detail), "body", "invalid", exc)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return Problem("auth", 401, str(exc.detail), code=exc.default_code, exc=exc)
    if isinstance(exc, exceptions.PermissionDenied | PermissionDenied):
        return Problem("auth", 401, "Authentication failed.", code="forbidden", exc=exc)
    if isinstance(exc, exceptions.Throttled):
        return Problem("throttled", 429, str(exc.detail), code="throttled", exc=exc)
    if isinstance(exc, BodyTooLarge | RequestDataTooBig):
        return Problem("too_large", 413, BodyTooLarge.default_detail, "body", "too_large", exc)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Problem("method", 405, str(exc.detail), code="method_not_allowed", exc=exc)
    if isinstance(exc, exceptions.UnsupportedMediaType | exceptions.NotAcceptable):
        return Problem("validation", 400, str(exc.detail), "body", "invalid", exc)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return Problem("not_found", 404, "Not found.", code="not_found", exc=exc)
    if isinstance(exc, exceptions.APIException):
        return Problem("validation", exc.status_code, str(exc.detail), code="invalid", exc=exc)
    logger.exception("unexpected error in a partner API", exc_info=exc)
    return Problem("internal", 500, "Internal server error.", code="internal", exc=exc)


def handled(exc: Exception) -> Problem:
    set_rollback()
    return classify(exc)
