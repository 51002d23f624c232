"""Input fields of the staff API: loyalty.http's strict fields, in the staff API's words."""

from __future__ import annotations

from rest_framework import serializers

from loyalty.http.fields import AmountField, StrictCharField
from loyalty.http.fields import reason_field as shared_reason_field

__all__ = ["ContractIntegerField", "TextField", "preview_field", "reason_field"]


class ContractIntegerField(AmountField):
    """A JSON integer or a string of digits (with a negative `min_value`, a leading minus is
    allowed); see loyalty.http.fields.AmountField for what is refused."""


class TextField(StrictCharField):
    """A JSON string only (DRF's CharField would also take numbers)."""


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def reason_field() -> TextField:
    return shared_reason_field(TextField)


def preview_field() -> StrictBooleanField:
    return StrictBooleanField(
        required=False,
        default=False,
        help_text="true: answer with the object as it would be after the correction (or the "
        "refusal it would get) and change nothing.",
    )
