"""What the three partner API families share: parsing, auth check, throttle, errors."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from partners.body import AnyContentTypeJSONParser, PartnerJSONParser
from partners.models import Partner
from partners.throttling import PartnerRateThrottle


class IsPartner(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Partner)


class PartnerAPIView(APIView):
    # Base of every partner endpoint (a comment, not a docstring: docstrings become the
    # OpenAPI descriptions). Families set `authentication_classes` and
    # `family_exception_handler`, a function (exc, context) -> Response.

    permission_classes = [IsPartner]
    throttle_classes = [PartnerRateThrottle]
    parser_classes = [PartnerJSONParser, AnyContentTypeJSONParser]
    renderer_classes = [JSONRenderer]
    family_exception_handler = None

    def get_exception_handler(self):
        return type(self).family_exception_handler

    @property
    def partner(self) -> Partner:
        return self.request.auth

    def input(self, serializer_class, data=None):
        """Validated input of `serializer_class` (raises ValidationError)."""
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
