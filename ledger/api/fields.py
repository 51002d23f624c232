"""Input fields with the contract's rules (CONTRACT.md "General rules")."""

from __future__ import annotations

import re

from rest_framework import serializers

MAX_AMOUNT = 10**12
REASON_MIN, REASON_MAX = 3, 500


class ContractIntegerField(serializers.Field):
    """A JSON integer or a string of digits (with `signed`, a leading minus is allowed).

    Refuses booleans, floats with a fraction, null, empty strings and out-of-range values.
    """

    default_error_messages = {
        "invalid": "Must be an integer.",
        "min_value": "Must be at least {min_value}.",
        "max_value": "Must be at most {max_value}.",
        "zero": "Must not be 0.",
    }

    def __init__(
        self,
        *,
        min_value: int = 1,
        max_value: int = MAX_AMOUNT,
        nonzero: bool = False,
        **kwargs,
    ) -> None:
        self.min_value, self.max_value, self.nonzero = min_value, max_value, nonzero
        self.pattern = re.compile(r"-?[0-9]+" if min_value < 0 else r"[0-9]+")
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, float) and data.is_integer() and abs(data) <= 2**53:
            value = int(data)
        elif isinstance(data, str) and self.pattern.fullmatch(data):
            if len(data.lstrip("-").lstrip("0")) > len(str(MAX_AMOUNT)):
                self.fail("max_value" if not data.startswith("-") else "min_value", **self._bounds)
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


class TextField(serializers.CharField):
    """A JSON string only (DRF's CharField would also take numbers)."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def reason_field() -> TextField:
    return TextField(
        min_length=REASON_MIN,
        max_length=REASON_MAX,
        help_text=f"Why the correction is made ({REASON_MIN} to {REASON_MAX} characters).",
    )


def preview_field() -> StrictBooleanField:
    return StrictBooleanField(
        required=False,
        default=False,
        help_text="true: answer with the object as it would be after the correction (or the "
        "refusal it would get) and change nothing.",
    )
