"""A no-op DRF endpoint: the baseline the load benchmark measures every endpoint against.

Mounted only when BENCH_NOOP_ENDPOINT is set (bench/load.py sets it for its server).
"""

from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class NoopView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    schema = None  # not part of the product's API

    def get(self, request):
        return Response({"ok": True})
