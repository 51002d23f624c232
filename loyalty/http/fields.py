"""The strict DRF input fields every API family shares: integers/amounts and JSON strings.

Each family subclasses them only to word its messages (and, for the partner APIs, to
describe the field in OpenAPI); the rules are these.
"""

from __future__ import annotations

import re

from rest_framework import serializers

from loyalty.http.limits import MAX_AMOUNT, MAX_SAFE_INTEGER, REASON_MAX, REASON_MIN


class AmountField(serializers.Field):
    """A JSON integer, an integral float up to 2^53 or a string of ASCII digits (with a
    negative `min_value`, a leading minus is allowed); `nonzero` refuses 0.

    Refuses booleans, fractions, floats beyond 2^53 (no longer one integer), null, empty
    strings and values outside the bounds.
    """

    default_error_messages = {
        "invalid": "Must be an integer.",
        "min_value": "Must be at least {min_value}.",
        "max_value": "Must be at most {max_value}.",
        "zero": "Must not be 0.",
    }

    def __init__(
        self, *, min_value: int = 1, max_value: int = MAX_AMOUNT, nonzero: bool = False, **kwargs
    ) -> None:
        self.min_value, self.max_value, self.nonzero = min_value, max_value, nonzero
        self.pattern = re.compile(r"-?[0-9]+" if min_value < 0 else r"[0-9]+")
        # More digits than the widest bound: out of range, refused before int() reads them.
        self.max_digits = len(str(max(abs(min_value), abs(max_value))))
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, float) and data.is_integer() and abs(data) <= MAX_SAFE_INTEGER:
            value = int(data)
        elif isinstance(data, str) and self.pattern.fullmatch(data):
            if len(data.lstrip("-").lstrip("0")) > self.max_digits:
                self.fail("min_value" if data.startswith("-") else "max_value", **self._bounds)
            value = int(data)
        else:
            self.fail("invalid")
        if value < self.min_value:
            self.fail("min_value", **self._bounds)
        if value > self.max_value:
            self.fail("max_value", **self._bounds)
        if self.nonzero and value == 0:
            self.fail("zero")
        return value

    @property
    def _bounds(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value}

    def to_representation(self, value) -> int:
        return value


class StrictCharField(serializers.CharField):
    """A JSON string only (DRF's CharField would also take numbers and booleans)."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def reason_field(field_class: type[StrictCharField] = StrictCharField, **kwargs):
    """A correction's reason: a JSON string of REASON_MIN to REASON_MAX characters (stripped)."""
    kwargs.setdefault(
        "help_text", f"Why the correction is made ({REASON_MIN} to {REASON_MAX} characters)."
    )
    return field_class(min_length=REASON_MIN, max_length=REASON_MAX, **kwargs)
