"""Reading partner request bodies (for the signature check and the APIs): JSON whatever the
Content-Type, at most 64 KiB."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions
from rest_framework.parsers import BaseParser


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is larger than 64 KiB."
    default_code = "body_too_large"


def _limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def raw_body(request) -> bytes:
    django_request = getattr(request, "_request", request)
    try:
        body = django_request.body
    except RequestDataTooBig:
        raise BodyTooLarge() from None
    if len(body) > _limit():  # chunked bodies carry no Content-Length to check up front
        raise BodyTooLarge()
    return body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


# Deeper bodies are refused: canonicalising one to check its signature (and any other
# recursive walk) would exhaust Python's stack well inside 64 KiB, at about 450 levels.
MAX_DEPTH = 64


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
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise exceptions.ParseError("The body is not valid JSON.") from exc
    if _too_deep(value):
        raise exceptions.ParseError(f"The body is nested deeper than {MAX_DEPTH} levels.")
    return value


_EMPTY = object()  # no body at all, unlike a JSON `null`


def json_body(request, *, allow_empty: bool = False):
    """The parsed body (cached on the request); None for an empty body when allowed."""
    django_request = getattr(request, "_request", request)
    value = getattr(django_request, "_partner_json", None)
    if not hasattr(django_request, "_partner_json"):
        raw = raw_body(request)
        value = _EMPTY if not raw.strip() else parse_json(raw)
        django_request._partner_json = value
    if value is _EMPTY:
        if not allow_empty:
            raise exceptions.ParseError("The body is empty.")
        return None
    return value


class PartnerJSONParser(BaseParser):
    """Parses the body as JSON, at most 64 KiB."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        value = json_body(request, allow_empty=True)
        return {} if value is None else value


class AnyContentTypeJSONParser(PartnerJSONParser):
    """The body is JSON whatever the Content-Type says: clients of the public APIs send
    JSON with or without the header (curl -d sends form encoding by default)."""

    media_type = "*/*"
