"""OpenAPI for the staff API: every operation documents the error body it can answer with."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter

from ledger.api.serializers import ErrorSerializer

ERRORS_ALWAYS = {
    "400": "Invalid input (fields, filters, JSON body).",
    "401": "No or invalid credentials.",
    "403": "Authenticated without the permission.",
    "404": "No such object.",
    "429": "Throttled.",
}
ERRORS_UNSAFE = {
    "409": "Business refusal (state conflict) or Idempotency-Key still in flight.",
    "413": "Body over 64 KiB.",
    "415": "Body is not application/json.",
    "422": "Idempotency-Key reused with a different request.",
}

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    OpenApiParameter.HEADER,
    required=False,
    description="1 to 255 printable ASCII characters. A repeat with the same body gets the "
    "stored response and changes nothing; with another body it is refused (422).",
)


class ContractIntegerFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "ledger.api.fields.ContractIntegerField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = {"type": "integer", "minimum": field.min_value, "maximum": field.max_value}
        if field.nonzero:
            schema["not"] = {"enum": [0]}
        schema["description"] = "A JSON integer (a string of digits is accepted too)."
        if field.allow_null:
            schema["nullable"] = True
        return schema


OBJECT_ID = OpenApiParameter(
    "id",
    {"type": "integer", "minimum": 1, "maximum": 10**18 - 1},
    OpenApiParameter.PATH,
    description="The object's id.",
)


class StaffAutoSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if "{id}" in self.path:
            parameters = [OBJECT_ID, *parameters]
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(ERRORS_ALWAYS)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            errors.update(ERRORS_UNSAFE)
        for code, description in errors.items():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = description
                responses[code] = response
        return dict(sorted(responses.items()))

    def get_serializer_name(self, serializer, direction):
        # Components of this API are prefixed so they never collide with the partner APIs'
        # components in the shared schema.
        return "Staff" + super().get_serializer_name(serializer, direction)

    def get_tags(self):
        return ["staff"]
