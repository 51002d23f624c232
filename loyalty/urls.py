"""URL map: admin, health check, staff API, OpenAPI schema and docs, partner APIs."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from loyalty.health import healthz
from loyalty.noop import NoopView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("ledger.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Partner APIs live at the paths of the public APIs they are compatible with.
    path("", include("partners.api.urls")),
]

if settings.BENCH_NOOP_ENDPOINT:
    urlpatterns.insert(0, path("bench/noop", NoopView.as_view(), name="bench-noop"))
