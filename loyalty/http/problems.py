"""One classifier from any exception an API view can meet to a neutral problem.

A problem says what went wrong (`kind`), in words (`message`), where (`field`, `fields`) and
with which stable code (`code`); it knows no envelope and no HTTP status. Each API family
renders problems in its own shape, with its own kind-to-status table. Domain errors carry
their kind as a class attribute (`loyalty.errors.DomainError.kind`), so nothing here imports
an app.

Kinds: invalid, malformed (the body is not JSON), unauthenticated, forbidden, not_found,
method, not_acceptable, unsupported_media_type, refused (a business rule), conflict (the
database refused a write, or a state that changed meanwhile), too_large, throttled,
idempotency_reused, idempotency_in_flight, http (any other DRF exception: `status` says which)
and internal (a bug: logged with its traceback).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from loyalty.errors import DomainError, InvalidInput
from loyalty.http.body import BodyTooLarge

logger = logging.getLogger("loyalty.http")


@dataclasses.dataclass(frozen=True)
class Problem:
    kind: str
    message: str  # human text, without the field's name
    code: str = ""  # stable: a domain error's code, "invalid", "not_found", ...
    field: str = ""  # the first field at fault ("" when none); see `fields` for all of them
    fields: Mapping[str, list[str]] = dataclasses.field(default_factory=dict)
    rule: str = ""  # which check the first field failed ("required", "max_value", ...)
    domain: bool = False  # raised by a service as a DomainError
    neutral_names: bool = False  # field names are the services' (model) names, not the wire's
    refers_to: tuple[str, ...] = ()  # other fields the message names (services' names too)
    status: int | None = None  # only for kind "http"
    exc: Exception | None = dataclasses.field(default=None, compare=False, repr=False)

    def renamed(self, wire_names: Mapping[str, str]) -> Problem:
        """This problem with a service's field names replaced by the family's wire names (in
        the field, and in the message where it names another field: `refers_to`)."""
        if not self.neutral_names or not wire_names:
            return self
        names = [name for name in self.refers_to if name in wire_names]
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b") if names else None

        def rename(text: str) -> str:
            return pattern.sub(lambda m: wire_names[m.group()], text) if pattern else text

        return dataclasses.replace(
            self,
            field=wire_names.get(self.field, self.field),
            fields={wire_names.get(k, k): [rename(m) for m in v] for k, v in self.fields.items()},
            message=rename(self.message),
            neutral_names=False,
        )


def flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF validation detail as {"field": ["message", ...]} (nested names joined by dots)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for name_, messages in flatten(value, name).items():
                out.setdefault(name_, []).extend(messages)
    elif isinstance(detail, list):
        for item in detail:
            if isinstance(item, dict | list):
                for name_, messages in flatten(item, prefix).items():
                    out.setdefault(name_, []).extend(messages)
            else:
                out.setdefault(prefix or "non_field_errors", []).append(str(item))
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def first_error(detail, prefix: str = "") -> tuple[str, str, str]:
    """(field, message, code) of the first error in a DRF ValidationError detail; the field is
    "" for an error of the whole object."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            return first_error(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    if isinstance(detail, list) and detail:
        return first_error(detail[0], prefix)
    code = getattr(detail, "code", "invalid") or "invalid"
    return prefix, str(detail), code


def _domain(exc: DomainError) -> Problem:
    name = getattr(exc, "field", "") or ""
    message = exc.message
    if isinstance(exc, InvalidInput):
        message = exc.message.split(": ", 1)[-1]
    return Problem(
        exc.kind,
        message,
        code=exc.code,
        field=name,
        fields={name: [message]} if name else {},
        rule="invalid" if exc.kind == "invalid" else "",
        domain=True,
        neutral_names=True,
        refers_to=tuple(getattr(exc, "refers_to", ())),
        exc=exc,
    )


def classify(exc: Exception) -> Problem:
    """The neutral problem of `exc` (a bug is logged here, once)."""
    if isinstance(exc, DomainError):
        return _domain(exc)
    if isinstance(exc, exceptions.ValidationError):
        name, message, rule = first_error(exc.detail)
        fields = flatten(exc.detail)
        return Problem("invalid", message, "invalid", name or "body", fields, rule, exc=exc)
    if isinstance(exc, exceptions.ParseError):
        return Problem("malformed", str(exc.detail), "parse_error", "body", exc=exc)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return Problem("unauthenticated", str(exc.detail), exc.default_code, exc=exc)
    if isinstance(exc, exceptions.PermissionDenied | PermissionDenied):
        message = "You do not have permission to perform this action."
        if isinstance(exc, exceptions.PermissionDenied):
            message = str(exc.detail)
        return Problem("forbidden", message, "permission_denied", exc=exc)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return Problem("not_found", "Not found.", "not_found", exc=exc)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Problem("method", str(exc.detail), "method_not_allowed", exc=exc)
    if isinstance(exc, exceptions.NotAcceptable):
        return Problem("not_acceptable", str(exc.detail), "not_acceptable", "body", exc=exc)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Problem(
            "unsupported_media_type", str(exc.detail), "unsupported_media_type", "body", exc=exc
        )
    if isinstance(exc, BodyTooLarge | RequestDataTooBig):
        return Problem("too_large", BodyTooLarge.default_detail, "body_too_large", "body", exc=exc)
    if isinstance(exc, exceptions.Throttled):
        return Problem("throttled", str(exc.detail), "throttled", exc=exc)
    if isinstance(exc, exceptions.APIException):
        return Problem("http", str(exc.detail), exc.default_code, status=exc.status_code, exc=exc)
    if isinstance(exc, IntegrityError):
        # The database refused a write that would break an invariant (a race that a service's
        # own check could not see, say): nothing was written.
        logger.warning("integrity error: %s", exc)
        return Problem("conflict", "The change conflicts with the current state.", "conflict")
    if isinstance(exc, DataError):
        # A value the database cannot hold slipped past validation: still the caller's input.
        logger.warning("data error: %s", exc)
        return Problem("invalid", "A value is out of range.", "invalid", rule="invalid", exc=exc)
    logger.exception("unexpected error in an API view", exc_info=exc)
    return Problem("internal", "Internal server error.", "internal", exc=exc)


def handled(exc: Exception) -> Problem:
    """For exception handlers: roll the request's transaction back, then classify."""
    set_rollback()
    return classify(exc)


class ProblemResponse(Response):
    """A response that renders a problem. It is never a success, whatever its status (the
    Stamp API answers business refusals, and some Points API credentials every error, with
    HTTP 200), so nothing stores it as one (see loyalty.idempotency.is_success)."""
