"""Reading staff API request bodies: a JSON object, UTF-8, at most 64 KiB."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from ledger.api.errors import BodyTooLarge


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class StaffJSONParser(BaseParser):
    """Parses from the request's body (so Django's DATA_UPLOAD_MAX_MEMORY_SIZE applies, which
    DRF's own JSONParser skips by reading the stream) and insists on an object."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        django_request = getattr(request, "_request", request)
        try:
            raw = django_request.body
        except RequestDataTooBig:
            raise BodyTooLarge() from None
        if len(raw) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:  # chunked: no Content-Length
            raise BodyTooLarge()
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            # Lone surrogates parse but cannot be stored: refuse them here, not as a 500.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, ValueError, RecursionError) as exc:
            raise exceptions.ParseError("The body is not valid JSON.") from exc
        if not isinstance(value, dict):
            raise exceptions.ParseError("The body must be a JSON object.")
        return value
