"""Admin pages for webhook endpoints (create and rotate show the secret once) and their
deliveries (status, attempts, last answer, redeliver).

Holders of `ledger.view_event` (Support, Auditor) read both and change nothing; managing
needs `ledger.manage_webhookendpoint` (superusers). Every write goes through
`ledger.webhooks.services`.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ledger.admin.base import (
    CappedCountPaginator,
    CompactDates,
    admin_link,
    changelist_link,
    truncated,
    when,
)
from ledger.models.webhooks import WebhookDelivery, WebhookEndpoint
from ledger.webhooks import addresses, services
from ledger.webhooks.feed import EVENT_TYPES
from loyalty.errors import DomainError, InvalidInput

VIEW = "ledger.view_event"
MANAGE = "ledger.manage_webhookendpoint"
TYPE_CHOICES = [("*", "* (every type)"), *[(t, t) for t in EVENT_TYPES]]


class ReadersAndManagers:
    """Readers of the event feed see; only managers change."""

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(VIEW) or request.user.has_perm(MANAGE)

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm(MANAGE)

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(MANAGE)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class EndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=TYPE_CHOICES, widget=forms.CheckboxSelectMultiple, initial=["*"]
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["merchant", "url", "event_types", "active", "description"]

    def clean(self):
        cleaned = super().clean()
        for field, check in (
            ("url", addresses.validate_url),
            ("event_types", services.validate_event_types),
        ):
            if field in cleaned:
                try:
                    cleaned[field] = check(cleaned[field])
                except InvalidInput as exc:
                    self.add_error(field, exc.message.split(": ", 1)[-1])
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadersAndManagers, CompactDates, admin.ModelAdmin):
    form = EndpointForm
    change_form_template = "admin/backoffice/change_form.html"
    list_display = ["id", "url_display", "merchant_link", "types", "active", "created_display"]
    list_display_links = ["id", "url_display"]
    list_filter = ["active"]
    list_select_related = ["merchant"]
    search_fields = ["url", "description"]
    readonly_fields = ["created", "updated", "deliveries"]
    denied_permissions = {"rotate": [MANAGE], "add": [MANAGE]}  # named by the 403 page

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["merchant", "url", "event_types", "description"]
        return ["merchant", "url", "event_types", "active", "description", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and self.has_change_permission(request, obj):
            return ["merchant", *self.readonly_fields]  # an endpoint stays with its merchant
        return super().get_readonly_fields(request, obj)

    @admin.display(description="URL", ordering="url")
    def url_display(self, obj):
        return truncated(obj.url, "l")

    @admin.display(description="Merchant", ordering="merchant_id")
    def merchant_link(self, obj):
        return admin_link(obj.merchant, truncated(obj.merchant.name, "s"))

    @admin.display(description="Event types")
    def types(self, obj):
        return truncated(", ".join(obj.event_types), "s")

    @admin.display(description="Deliveries")
    def deliveries(self, obj):
        return changelist_link(WebhookDelivery, "deliveries →", endpoint__id__exact=obj.pk)

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        if change:
            saved = services.endpoint_update(
                obj,
                url=data["url"],
                event_types=data["event_types"],
                active=data["active"],
                description=data["description"],
            )
        else:
            saved, secret = services.endpoint_create(
                merchant_id=data["merchant"].pk,
                url=data["url"],
                event_types=data["event_types"],
                description=data["description"],
            )
            request.webhook_secret = secret
        obj.pk = saved.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change) -> None:
        """Nothing to save: the service wrote the endpoint."""

    def response_add(self, request, obj, post_url_continue=None):
        return self._secret_page(request, obj, request.webhook_secret, rotated=False)

    def _secret_page(self, request, endpoint, secret: str, *, rotated: bool):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "object": endpoint,
            "secret": secret,
            "rotated": rotated,
            "title": f"Signing secret of {endpoint}",
            "subtitle": None,
        }
        request.current_app = self.admin_site.name
        response = TemplateResponse(request, "admin/backoffice/webhook_secret.html", context)
        response["Cache-Control"] = "no-store"  # shown once: never cached
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        buttons = []
        if obj is not None and self.has_change_permission(request, obj):
            url = reverse("admin:ledger_webhookendpoint_rotate", args=[obj.pk])
            buttons.append(("Rotate secret", url))
        context["object_buttons"] = buttons
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/rotate-secret/",
                self.admin_site.admin_view(self.rotate_view),
                name="ledger_webhookendpoint_rotate",
            ),
            *super().get_urls(),
        ]

    def rotate_view(self, request, object_id):
        if not self.has_change_permission(request):
            raise PermissionDenied
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if request.method == "POST" and request.POST.get("post") == "yes":
            secret = services.endpoint_rotate_secret(endpoint)
            return self._secret_page(request, endpoint, secret, rotated=True)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "object": endpoint,
            "title": f"Rotate the secret of {endpoint}?",
            "subtitle": None,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/backoffice/webhook_rotate.html", context)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadersAndManagers, admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    # The error text is on the object page (and on hover over the last answer).
    list_display = [
        "id",
        "event_display",
        "endpoint_link",
        "status",
        "last_answer",
        "last_attempt_display",
        "next_attempt_display",
    ]
    list_filter = ["status", "endpoint"]
    list_select_related = ["endpoint", "event"]
    search_fields = ["=event__event_id"]
    actions = ["redeliver"]
    fields = readonly_fields = [
        "endpoint",
        "event_id",
        "event_type",
        "customer",
        "customer_sequence",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "last_attempt_at",
        "created",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # the worker creates deliveries from the event feed

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only; "redeliver" is the one thing to do

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm(MANAGE)

    @admin.display(description="Event")
    def event_id(self, obj):
        return obj.event.event_id

    @admin.display(description="Event")
    def event_display(self, obj):
        """The event's type, and its id (which search finds) on a quiet second line."""
        return format_html(
            '{}<br><span class="quiet-line">{}</span>',
            obj.event_type,
            truncated(obj.event.event_id, "s"),
        )

    @admin.display(description="Endpoint", ordering="endpoint_id")
    def endpoint_link(self, obj):
        return admin_link(obj.endpoint, truncated(obj.endpoint.url, "s"))

    @admin.display(description="Last answer")
    def last_answer(self, obj):
        """HTTP status (or the error) and the attempts so far; the error in full on hover."""
        answer = str(obj.last_status_code or "") or ("error" if obj.last_error else "-")
        text = f"{answer}, {obj.attempts} attempt{'s' if obj.attempts != 1 else ''}"
        return format_html('<span title="{}">{}</span>', obj.last_error or text, text)

    @admin.display(description="Last attempt")
    def last_attempt_display(self, obj):
        return when(obj.last_attempt_at)

    @admin.display(description="Next attempt")
    def next_attempt_display(self, obj):
        if obj.status != WebhookDelivery.Status.PENDING:
            return "-"
        return when(obj.next_attempt_at)

    @admin.action(description="Redeliver the selected deliveries", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        queued = skipped = 0
        for delivery in queryset:
            try:
                services.delivery_redeliver(delivery)
                queued += 1
            except DomainError:
                skipped += 1
        self.message_user(request, f"{queued} queued again; {skipped} still pending (skipped).")
        if skipped and not queued:
            messages.warning(request, "Only failed or succeeded deliveries can be redelivered.")
