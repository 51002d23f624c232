"""Input fields of the partner APIs, with the general rules of the README's wire reference."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loyalty.http.fields import AmountField, StrictCharField, reason_field


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]})
class ContractIntegerField(AmountField):
    """A JSON integer or a string of digits; no booleans, fractions, nulls or empty strings
    (the rules are loyalty.http.fields.AmountField's, in the partner APIs' words)."""

    default_error_messages = {
        "invalid": "must be an integer",
        "min_value": "must be at least {min_value}",
        "max_value": "must be at most {max_value}",
        "zero": "must not be 0",
    }


@extend_schema_field({"type": "string", "format": "date", "example": "2026-12-31"})
class YmdField(serializers.Field):
    """A date written `YYYY-MM-DD` or `YYYYMMDD`."""

    default_error_messages = {"invalid": "must be a date written YYYY-MM-DD"}

    def to_internal_value(self, data) -> dt.date:
        if isinstance(data, str):
            for fmt in ("%Y-%m-%d", "%Y%m%d"):
                try:
                    return dt.datetime.strptime(data, fmt).date()
                except ValueError:
                    continue
        self.fail("invalid")

    def to_representation(self, value: dt.date) -> str:
        return value.isoformat()


@extend_schema_field({"type": "string", "enum": ["Y", "N"]}, component_name="YesNo")
class YNField(serializers.Field):
    """Vivoldi's `"Y"`/`"N"` flags."""

    default_error_messages = {"invalid": 'must be "Y" or "N"'}

    def to_internal_value(self, data) -> bool:
        if isinstance(data, str) and data.upper() in ("Y", "N"):
            return data.upper() == "Y"
        self.fail("invalid")

    def to_representation(self, value: bool) -> str:
        return "Y" if value else "N"


class JSONStringField(StrictCharField):
    """A JSON string only: a number where a string is due (a redemption id sent as 12345) is a
    400, not silently read as its digits."""

    default_error_messages = {"invalid": "must be a string"}


def string(max_length: int | None = None, **kwargs) -> JSONStringField:
    """A required string field (`required=False` and the like as for DRF's CharField)."""
    return JSONStringField(max_length=max_length, **kwargs)


def text(max_length: int, **kwargs) -> JSONStringField:
    """An optional string field that may be blank."""
    kwargs.setdefault("required", False)
    return JSONStringField(max_length=max_length, allow_blank=True, trim_whitespace=True, **kwargs)


def correction_reason(**kwargs) -> JSONStringField:
    """A correction's reason, required (3 to 500 characters)."""
    return reason_field(JSONStringField, **kwargs)
