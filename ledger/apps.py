"""The ledger app's config, and the admin's: django.contrib.admin with the back-office site."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LedgerConfig(AppConfig):
    default = True  # this module holds two configs: the app's is this one
    name = "ledger"
    verbose_name = "Ledger"


class BackOfficeAdminConfig(admin_apps.AdminConfig):
    """Replaces `django.contrib.admin` in INSTALLED_APPS: `admin.site` is `BackOfficeSite`."""

    default = False  # named explicitly in INSTALLED_APPS, never picked for "ledger"
    default_site = "ledger.admin.site.backoffice_site"  # a BackOfficeSite
