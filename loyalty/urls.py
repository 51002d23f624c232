"""URL map: admin, health check, staff API, OpenAPI schema and docs, partner APIs."""

from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from loyalty.health import healthz
from loyalty.noop import NoopView


class FaviconView(RedirectView):
    """/favicon.ico (asked for by pages without an icon link, e.g. the API's JSON) -> the
    back office's SVG icon among the static files."""

    permanent = False

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("backoffice/favicon.svg")


# A PermissionDenied under the admin renders in the admin's layout, naming what is missing.
handler403 = "ledger.admin.denied.permission_denied"

urlpatterns = [
    # No public site: the root is the back office.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="root"),
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
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
