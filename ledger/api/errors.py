"""The staff API's error envelope and its kind-to-status table, over loyalty.http.problems.

Body: {"code": "<stable code>", "message": "<human text>", "fields": {"<field>": ["..."]}}.
The handler always rolls the transaction back and never lets an exception become Django's
HTML 500 page: an unexpected error is logged and answered 500 in the same shape. Field names
are the services' own (the staff API speaks the model's names), so nothing is renamed.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from loyalty.http.problems import Problem, ProblemResponse, handled

STATUS = {
    "invalid": 400,
    "malformed": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method": 405,
    "not_acceptable": 406,
    "refused": 409,  # the object is not in a state that allows the operation
    "conflict": 409,
    "idempotency_in_flight": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "idempotency_reused": 422,
    "throttled": 429,
    "internal": 500,
}
# Problems whose fields the body lists (a body that is no JSON at all has none).
WITH_FIELDS = {"invalid"}


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"code": code, "message": message, "fields": fields or {}}


def _validation_message(fields) -> str:
    for name, messages in fields.items():
        if messages:
            return messages[0] if name == "non_field_errors" else f"{name}: {messages[0]}"
    return "Invalid input."


def render(problem: Problem) -> tuple[int, dict]:
    """(HTTP status, body) of a problem."""
    status = problem.status if problem.kind == "http" else STATUS[problem.kind]
    fields = dict(problem.fields) if problem.kind in WITH_FIELDS else {}
    message = problem.message
    if problem.code == "invalid" and fields:
        message = _validation_message(fields)
    return status, error_body(problem.code, message, fields)


def staff_exception_handler(exc: Exception, context) -> ProblemResponse:
    status_code, body = render(handled(exc))
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    return ProblemResponse(body, status=status_code, headers=headers)


@csrf_exempt
def not_found(request, *args, **kwargs) -> JsonResponse:
    """Any /api/v1/ path that names no endpoint: 404 in the staff API's shape."""
    message = "Not found."
    if not request.path.endswith("/"):
        message = "Not found. Staff API paths end with a slash."
    return JsonResponse(error_body("not_found", message), status=404)
