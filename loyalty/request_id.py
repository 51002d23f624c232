"""A request id for every request: taken from X-Request-ID when sane, echoed in the response,
put on every log line written while the request runs, and one JSON access line per request.

Log lines name the path and the query parameters, never their values (emails, wallet
addresses), and a plain 4xx is one line without a traceback."""

import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import parse_qsl

_request_id: ContextVar[str] = ContextVar("request_id", default="")
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


access_log = logging.getLogger("loyalty.access")


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def using_request_id(value: str) -> Iterator[None]:
    """Work done outside a request under an id of its own (a batch's row: `batch-<id>:<line>`),
    so its history rows and events name it."""
    token = _request_id.set(value)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record (empty outside a request), unless the record
    already has one (django.request logs some answers after the middleware has returned:
    RedactingFilter takes theirs from the request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = _request_id.get()
        return True


MAX_QUERY_NAMES = 20


def query_names(request) -> list[str]:
    """The query string's parameter names (sorted, at most 20), without their values.

    Parsed here rather than through `request.GET`, which raises past Django's field limit."""
    pairs = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    return sorted({name[:64] for name, _ in pairs})[:MAX_QUERY_NAMES]


class RedactingFilter(logging.Filter):
    """Makes records that carry the request (Django's `django.request` and
    `django.security.*` lines) safe to write: the request becomes method, path and parameter
    names (the JSON formatter would otherwise write its repr, full query string included),
    and below 500 the traceback goes (a 403 or 404 is an answer, not a fault)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            if not getattr(record, "request_id", ""):
                record.request_id = getattr(request, "request_id", "") or _request_id.get()
            names = "&".join(query_names(request))
            record.request = f"{request.method} {request.path}" + (f"?{names}" if names else "")
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500 and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            user = getattr(request, "user", None)
            access_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "query": query_names(request),
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user": user.get_username() if getattr(user, "is_authenticated", False) else "",
                },
            )
        finally:
            _request_id.reset(token)
        return response
