"""The back office's admin site: Django's, plus the site-wide pages for auditors.

`BackOfficeSite` is the default site (`ledger.apps.BackOfficeAdminConfig` names
`backoffice_site`), so `admin.site` everywhere, the project's URLconf included, is this one.
"""

from __future__ import annotations

from functools import cache

from django.contrib import admin
from django.urls import path

from ledger.admin.audit_log import audit_log_csv_view, audit_log_view
from ledger.admin.dashboard import dashboard_view


class BackOfficeSite(admin.AdminSite):
    """Adds `admin:audit_log`, `admin:audit_log_csv` and `admin:dashboard`."""

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
