"""OpenAPI descriptions of the partner authentication schemes (drf-spectacular extensions)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "partners.authentication.APIKeyAuthentication"
    name = "StampAPIKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Authorization: APIKey <partner api_key>`",
        }


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "partners.authentication.PartnerTokenAuthentication"
    name = "BalanceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Authorization: Token <partner api_key>` (or `Bearer <api_key>`)",
        }


class HMACScheme(OpenApiAuthenticationExtension):
    target_class = "partners.authentication.HMACAuthentication"
    name = "PointsHMAC"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-KEY",
            "description": (
                "The partner's hmac_key, with `X-API-REQUEST` (a UUIDv7, fresh within "
                "POINTS_API_MAX_SKEW_SECONDS, never reused) and `X-API-SIGNATURE` = lowercase "
                "hex HMAC-SHA256(secret, METHOD + path + X-API-REQUEST + canonical JSON body). "
                "Every HTTP 200 answer carries X-API-SIGNATURE over the response body."
            ),
        }


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="1 to 255 printable ASCII characters; a repeat replays the stored response.",
)
SIGNED_REQUEST = [
    OpenApiParameter(
        "X-API-REQUEST",
        OpenApiTypes.UUID,
        OpenApiParameter.HEADER,
        required=True,
        description="A UUIDv7, never reused.",
    ),
    OpenApiParameter(
        "X-API-SIGNATURE",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description="Lowercase hex HMAC-SHA256 of the request.",
    ),
]
