"""The back office's admin site: Django's, plus the site-wide pages for auditors.

`BackOfficeSite` is the default site (`ledger.apps.BackOfficeAdminConfig` names
`backoffice_site`), so `admin.site` everywhere, the project's URLconf included, is this one.
"""

from __future__ import annotations

from functools import cache, wraps

from django.contrib import admin
from django.urls import path

from ledger.admin.audit_log import audit_log_csv_view, audit_log_view
from ledger.admin.base import current_request
from ledger.admin.dashboard import dashboard_view


class BackOfficeSite(admin.AdminSite):
    """Adds `admin:audit_log`, `admin:audit_log_csv` and `admin:dashboard`."""

    site_header = "Loyalty back office"
    site_title = "Loyalty back office"
    index_title = "Back office"
    # No public site behind the back office ("/" redirects here): no "View site" link.
    site_url = None

    def admin_view(self, view, cacheable=False):
        """Django's wrapper, plus `current_request` while the view runs and its template
        renders (so links know what the user may open)."""
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def with_request(request, *args, **kwargs):
            token = current_request.set(request)
            try:
                response = inner(request, *args, **kwargs)
                if hasattr(response, "render") and not response.is_rendered:
                    response.render()  # here, not later in the handler: the links need it
                return response
            finally:
                current_request.reset(token)

        return with_request

    def get_urls(self):
        return [
            path(
                "audit-log/",
                self.admin_view(lambda r: audit_log_view(r, self)),
                name="audit_log",
            ),
            path(
                "audit-log.csv",
                self.admin_view(lambda r: audit_log_csv_view(r, self)),
                name="audit_log_csv",
            ),
            path(
                "dashboard/",
                self.admin_view(lambda r: dashboard_view(r, self)),
                name="dashboard",
            ),
            *super().get_urls(),
        ]


@cache
def backoffice_site() -> BackOfficeSite:
    """The one BackOfficeSite: `default_site`, which Django calls to make `admin.site`.

    A factory rather than the class because this module's package registers the ModelAdmins
    on import: when `admin.site` is first touched (by any app's admin), importing this module
    runs that registration, which touches `admin.site` again before the first touch has its
    instance. With one instance both get the same site, and no registration is lost.
    """
    return BackOfficeSite()
