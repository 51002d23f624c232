"""One reader of JSON request bodies: size, encoding, constants, depth; and its DRF parser."""

from __future__ import annotations

import json
import math

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from loyalty.http.limits import MAX_BODY_BYTES, MAX_DEPTH


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB."
    default_code = "body_too_large"


def raw_body(request) -> bytes:
    """The body's bytes (of a DRF or a Django request); over the limit raises BodyTooLarge."""
    django_request = getattr(request, "_request", request)
    try:
        body = django_request.body
    except RequestDataTooBig:
        raise BodyTooLarge() from None
    # Chunked bodies carry no Content-Length for Django to check up front.
    if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise BodyTooLarge()
    return body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400 parses as infinity: the Infinity constant by another name
        raise ValueError("number out of range")
    return value


def _too_deep(value) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json(raw: bytes):
    """`raw` as JSON: UTF-8 without lone surrogates, no NaN/Infinity, at most MAX_DEPTH deep."""
    try:
        value = json.loads(
            raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
        )
        # Lone surrogates (\ud800) parse but can be neither stored nor signed as UTF-8.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise exceptions.ParseError("The body is not valid JSON.") from exc
    if _too_deep(value):
        raise exceptions.ParseError(f"The body is nested deeper than {MAX_DEPTH} levels.")
    return value


_EMPTY = object()  # no body at all, unlike a JSON `null`


def json_body(request, *, allow_empty: bool = False):
    """The parsed body, read once per request (authentication may need it before the view);
    None for an empty body when allowed."""
    django_request = getattr(request, "_request", request)
    value = getattr(django_request, "_json_body", None)
    if not hasattr(django_request, "_json_body"):
        raw = raw_body(request)
        value = _EMPTY if not raw.strip() else parse_json(raw)
        django_request._json_body = value
    if value is _EMPTY:
        if not allow_empty:
            raise exceptions.ParseError("The body is empty.")
        return None
    return value


class JSONBodyParser(BaseParser):
    """DRF parser over `json_body` (so the size limit applies, which DRF's own JSONParser skips
    by reading the stream). With `require_object`, anything but a JSON object is refused."""

    media_type = "application/json"
    require_object = False

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        value = json_body(request, allow_empty=True)
        # An empty body is no fields at all; a JSON `null` is that too unless an object is
        # required (then it is refused like any other non-object).
        if value is None and (not self.require_object or not raw_body(request).strip()):
            return {}
        if self.require_object and not isinstance(value, dict):
            raise exceptions.ParseError("The body must be a JSON object.")
        return value
