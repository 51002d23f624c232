"""The back office's admin plumbing: big-table defaults, service-backed forms, history pages.

Every audited model's admin derives from `BackOfficeAdmin`. It never deletes, never counts
millions of rows, and never saves a model itself: forms run their service (`call_service`),
first in a rolled-back dry run during validation so refusals become form errors, then for
real in `save_model`, attributed to the staff user on the `admin` channel.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode

from ledger import history
from loyalty.db import is_postgresql
from loyalty.errors import DomainError, InvalidInput
from loyalty.preview import dry_run

MASK = "••••••"


class CappedCountPaginator(Paginator):
    """Counts at most `cap` rows; past that, an unfiltered table uses PostgreSQL's estimate.

    `COUNT(*)` over millions of rows on every changelist page is the classic slow admin;
    a capped count stops early, and `is_capped` lets the page say "more than".
    """

    cap = 10_000
    is_capped = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not hasattr(queryset, "query"):
            return super().count
        capped = queryset.order_by().values("pk")[: self.cap + 1].count()
        if capped <= self.cap:
            self.is_capped = False
            return capped
        self.is_capped = True
        estimate = self._estimate(queryset) if not queryset.query.where else 0
        return max(estimate, self.cap)

    @staticmethod
    def _estimate(queryset) -> int:
        connection = connections[queryset.db]
        if not is_postgresql(connection):
            return 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
        return max(int(row[0]), 0) if row else 0


# The request of the admin page being built (set by `BackOfficeSite.admin_view` while the
# view runs and its template renders): display methods and read-only fields get no request,
# and a link must know whether its user may follow it.
current_request: ContextVar = ContextVar("backoffice_request", default=None)


def may_view(obj, request=None) -> bool:
    """Whether the user of `request` (default: the current admin request) may open `obj`'s
    admin page: its model is registered and its admin grants view (or change) on it. False
    when there is no request to ask about."""
    request = request or current_request.get()
    if request is None or obj is None:
        return False
    model_admin = admin.site._registry.get(type(obj)._meta.concrete_model)
    return model_admin is not None and model_admin.has_view_or_change_permission(request, obj)


def admin_link(obj, label: str | None = None, *, request=None) -> str:
    """A link to `obj`'s admin page (no query: uses the object already loaded), or the plain
    label when the user may not open that page (no link to a 403)."""
    if obj is None:
        return "-"
    text = label if label is not None else str(obj)
    if not may_view(obj, request):
        return format_html("{}", text)
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text)


def _readonly_foreign_key_link(self, remote_field, remote_obj):
    # Django's read-only foreign keys link to the related page whoever looks (a "Canceled by"
    # user linked Support to a 403); the object pages' links go through `admin_link` instead.
    return admin_link(remote_obj)


helpers.AdminReadonlyField.get_admin_url = _readonly_foreign_key_link


def changelist_link(model, label: str, **filters) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), label)


def truncated(text, size: str = "m") -> str:
    """`text` cut by CSS with an ellipsis (`size`: s, m or l on one line, "2" on at most two
    lines; see styles.html), the whole text in its `title` on hover and on the object page."""
    text = "" if text is None else str(text)
    if not text:
        return "-"
    css = "clamp-2" if size == "2" else f"truncate truncate-{size}"
    return format_html('<span class="{}" title="{}">{}</span>', css, text, text)


def with_after(amount: int, after: int, title: str = "") -> str:
    """A signed amount with the value after it on a quiet second line ("+50", "= 1550")."""
    return format_html(
        '<span title="{}">{}</span><br><span class="quiet-line">= {}</span>',
        title,
        f"{amount:+d}",
        after,
    )


def when(value) -> str:
    """A date and time for a list column: day and minute, wrapping between them only (the
    seconds in its title, and on the object page)."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}"><span class="nowrap">{}</span> '
        '<span class="nowrap">{}</span></time>',
        value.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime("%Y-%m-%d"),
        local.strftime("%H:%M"),
    )


class CompactDates:
    """`created_display`: the `created` column of a list, compact (see `when`)."""

    @admin.display(description="Created", ordering="created")
    def created_display(self, obj):
        return when(obj.created)


class BackOfficeAdmin(CompactDates, admin.ModelAdmin):
    """Defaults for every audited model: see the module docstring."""

    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    change_form_template = "admin/backoffice/change_form.html"
    object_history_template = "admin/backoffice/object_history.html"
    history_page_size = 50  # what the page never shows is the history reader's (redaction)

    # --- nothing is ever deleted, nothing is saved without a service ---------------------

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def call_service(self, request, form, change: bool):
        """Run the service that creates or changes the object; subclasses that allow a form."""
        raise PermissionDenied("no service writes this model from the admin")

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ServiceForm(base):
            def clean(self):
                cleaned = super().clean()
                if not self.errors:
                    try:
                        dry_run(lambda: model_admin.call_service(request, self, change))
                    except InvalidInput as exc:
                        self.add_error(exc.field if exc.field in self.fields else None, exc.message)
                    except DomainError as exc:
                        self.add_error(None, exc.message)
                return cleaned

        ServiceForm.__name__ = base.__name__
        return ServiceForm

    def save_model(self, request, obj, form, change) -> None:
        saved = self.call_service(request, form, change)
        obj.pk = saved.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change) -> None:
        """Nothing to save: the service wrote the object and its relations."""

    def get_object(self, request, object_id, from_field=None):
        """The object with the relations its `__str__` reads (`str_related` on the model), so
        its title and breadcrumbs cost no query each. Not in get_queryset(): ChangeList
        ignores list_select_related if that already selects."""
        related = getattr(self.model, "str_related", ())
        if not related:
            return super().get_object(request, object_id, from_field)
        queryset = self.get_queryset(request).select_related(*related)
        field = self.opts.pk if from_field is None else self.opts.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (self.model.DoesNotExist, ValidationError, ValueError):
            return None

    # --- history -------------------------------------------------------------------------

    def has_history_permission(self, request) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.view_historical{opts.model_name}")

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not (self.has_view_or_change_permission(request, obj)) or not (
            self.has_history_permission(request)
        ):
            raise PermissionDenied
        try:
            before = int(request.GET.get("before", ""))
        except ValueError:
            before = None
        versions, next_before = history.object_history_page(
            self.model, obj.pk, before=before, limit=self.history_page_size
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obj}",
            "subtitle": None,
            "versions": versions,
            "next_url": f"?{urlencode({'before': next_before})}" if next_before else None,
            "first_url": request.path if before is not None else None,
            "module_name": str(self.opts.verbose_name_plural).capitalize(),
            "object": obj,
            "opts": self.opts,
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.object_history_template, context)

    # --- object page buttons ---------------------------------------------------------------

    def object_buttons(self, request, obj) -> list[tuple[str, str]]:
        """(label, url) of the actions this user may run on `obj`, shown on its page."""
        return []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["object_buttons"] = self.object_buttons(request, obj) if obj is not None else []
        return super().render_change_form(request, context, add, change, form_url, obj)
