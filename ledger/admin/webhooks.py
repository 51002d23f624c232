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

from ledger.admin.base import CappedCountPaginator, changelist_link
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
class WebhookEndpointAdmin(ReadersAndManagers, admin.ModelAdmin):
    form = EndpointForm
    change_form_template = "admin/backoffice/change_form.html"
    list_display = ["id", "url", "merchant", "types", "active", "description", "created"]
    list_display_links = ["id", "url"]
    list_filter = ["active"]
    list_select_related = ["merchant"]
    search_fields = ["url", "description"]
    readonly_fields = ["created", "updated", "deliveries"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["merchant", "url", "event_types", "description"]
        return ["merchant", "url", "event_types", "active", "description", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and self.has_change_permission(request, obj):
            return ["merchant", *self.readonly_fields]  # an endpoint stays with its merchant
        return super().get_readonly_fields(request, obj)

    @admin.display(description="Event types")
    def types(self, obj):
        return ", ".join(obj.event_types)

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
    list_display = [
        "id",
        "endpoint",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "last_attempt_at",
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
