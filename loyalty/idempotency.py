"""Idempotency-Key for DRF views (README, wire reference: Idempotency-Key).

The first request with a key runs; a successful response is stored in the same transaction
as the ledger change, so a crash leaves neither. A repeat with the same method, path and body
gets the stored response again and changes nothing; the same key with another request is
refused (422); the same key while the first request still runs is refused at once (409),
detected on PostgreSQL by a transaction-scoped advisory lock rather than by waiting.

Refused requests (validation, business rules) are not stored: they changed nothing, so a
retry with the same key after the cause is fixed runs again.
"""

from __future__ import annotations

import functools
import hashlib
import json

from django.conf import settings
from django.db import connection, transaction
from rest_framework.response import Response

from loyalty.db import is_postgresql
from loyalty.errors import DomainError
from loyalty.http.problems import ProblemResponse
from loyalty.models import IdempotencyKey

HEADER = "Idempotency-Key"


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"
    kind = "invalid"
    field = HEADER
    message = "Idempotency-Key must be 1 to 255 printable ASCII characters."


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    kind = "idempotency_reused"
    message = "This Idempotency-Key was used with a different request."


class IdempotencyKeyInFlight(DomainError):
    code = "idempotency_key_in_flight"
    kind = "idempotency_in_flight"
    message = "A request with this Idempotency-Key is still being processed."


def parse_key(request) -> str | None:
    """The request's Idempotency-Key, None when absent; invalid values raise."""
    if HEADER not in request.headers:
        return None
    key = request.headers[HEADER]
    if not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise IdempotencyKeyInvalid()
    return key


def fingerprint(request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        body = request.body.decode("utf-8", "replace")
    raw = "\n".join([request.method, request.get_full_path(), body])
    return hashlib.sha256(raw.encode()).hexdigest()


def _lock_id(owner_id: int, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{owner_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _try_lock(owner_id: int, key: str) -> bool:
    if not is_postgresql(connection):
        return True  # SQLite (development) serialises writers anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(owner_id, key)])
        return bool(cursor.fetchone()[0])


def is_success(response) -> bool:
    """2xx and not a problem (families that answer refusals with 200 render them as a
    ProblemResponse)."""
    return 200 <= response.status_code < 300 and not isinstance(response, ProblemResponse)


def run(request, handler) -> Response:
    """Run `handler()` under the request's Idempotency-Key (if any)."""
    key = parse_key(request)
    if key is None:
        return handler()
    owner = request.user
    digest = fingerprint(request)
    with transaction.atomic():
        if not _try_lock(owner.pk, key):
            raise IdempotencyKeyInFlight()
        stored = IdempotencyKey.objects.filter(owner=owner, key=key).first()
        if stored is not None:
            if stored.fingerprint != digest:
                raise IdempotencyKeyReused()
            response = Response(stored.response_body, status=stored.response_status)
            response["Idempotent-Replayed"] = "true"
            return response
        response = handler()
        if is_success(response):
            IdempotencyKey.objects.create(
                owner=owner,
                key=key,
                fingerprint=digest,
                method=request.method,
                path=request.get_full_path()[:2000],
                response_status=response.status_code,
                response_body=response.data,
            )
        return response


def idempotent(view_method):
    """Decorate a DRF view method (post, put, or an @action) to honour Idempotency-Key."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        return run(request, lambda: view_method(self, request, *args, **kwargs))

    return wrapper


def retention_hours() -> int:
    return getattr(settings, "IDEMPOTENCY_KEY_RETENTION_HOURS", 24)
