"""The admin's 403 page: in the admin's layout, naming the permission that is missing.

`handler403` of the project (loyalty/urls.py) sends a PermissionDenied raised under the
admin here, for a signed-in staff user; anything else gets Django's plain 403. The page names
the permissions the user lacks for the page asked for, where they can be told from its URL:
a model page's (view, add, change, history, a correction, the admin's `denied_permissions`),
or the audit log's and dashboard's (every history).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.models import Permission
from django.template.response import TemplateResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults

from ledger import corrections
from ledger.history.access import HISTORY_PERMISSIONS

# The site's own pages (BackOfficeSite.get_urls) and what each needs.
SITE_PAGES = {name: HISTORY_PERMISSIONS for name in ("audit_log", "audit_log_csv", "dashboard")}


def _model_page_permissions(url_name: str, kwargs) -> tuple[object, list[list[str]]] | None:
    """(model admin, [alternatives of one permission each needed]) of a model page's URL."""
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        prefix = f"{opts.app_label}_{opts.model_name}_"
        if not url_name.startswith(prefix):
            continue
        suffix = url_name[len(prefix) :]

        def perm(action: str, opts=opts) -> str:
            return f"{opts.app_label}.{action}_{opts.model_name}"

        view_or_change = [perm("view"), perm("change")]
        needed = {
            "changelist": [view_or_change],
            "change": [view_or_change],
            "add": [[perm("add")]],
            "delete": [[perm("delete")]],
            "history": [view_or_change, [f"{opts.app_label}.view_historical{opts.model_name}"]],
        }.get(suffix)
        if suffix == "correction" and kwargs.get("name") in corrections.BY_KIND:
            needed = [[corrections.BY_KIND[kwargs["name"]].permission]]
        custom = getattr(model_admin, "denied_permissions", {}).get(suffix)
        if custom:
            needed = [[p] for p in custom]
        return model_admin, needed or []
    return None


def missing_permissions(request) -> list[str]:
    """The permissions `request.user` lacks for the admin page it asked for (each as
    "app.codename"; of alternatives, the first), or [] where the URL does not tell."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return []
    url_name = match.url_name or ""
    if url_name in SITE_PAGES:
        needed = [[p] for p in SITE_PAGES[url_name]]
    else:
        found = _model_page_permissions(url_name, match.kwargs)
        needed = found[1] if found else []
    user = request.user
    return [options[0] for options in needed if not any(user.has_perm(p) for p in options)]


def _described(perms: list[str]) -> list[tuple[str, str]]:
    """(codename, name) of each permission, e.g. ("auth.view_user", "Can view user")."""
    names = {
        f"{app}.{codename}": name
        for app, codename, name in Permission.objects.filter(
            codename__in=[p.split(".", 1)[1] for p in perms]
        ).values_list("content_type__app_label", "codename", "name")
    }
    return [(p, names.get(p, "")) for p in perms]


def _back_url(request) -> str | None:
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return None


def permission_denied(request, exception=None, template_name="403.html"):
    """handler403: the admin's own 403 page under the admin, Django's elsewhere."""
    user = getattr(request, "user", None)
    index = reverse("admin:index", current_app=admin.site.name)
    in_admin = request.path.startswith(index)
    if not (in_admin and user is not None and user.is_active and user.is_staff):
        return defaults.permission_denied(request, exception, template_name)
    context = {
        **admin.site.each_context(request),
        "title": "You may not open this page",
        "subtitle": None,
        "missing": _described(missing_permissions(request)),
        "message": str(exception or ""),
        "back_url": _back_url(request),
    }
    response = TemplateResponse(request, "admin/backoffice/403.html", context, status=403)
    return response.render()
