"""Admin pages for partners: read-only, with credential rotation that shows the new secret once.

Stored credentials are never displayed: the API key exists only as a hash (its prefix is
shown to recognise it), the HMAC secret only encrypted, and the X-API-KEY identifier masked.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ledger.admin.base import MASK, BackOfficeAdmin, changelist_link, truncated
from ledger.models import PointTransaction
from loyalty.audit import Channel
from loyalty.http.limits import REASON_MAX, REASON_MIN
from partners import services
from partners.models import Partner


class RotateForm(forms.Form):
    reason = forms.CharField(
        min_length=REASON_MIN,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=f"Why ({REASON_MIN} to {REASON_MAX} characters). Recorded in the partner's "
        "history.",
    )


@admin.register(Partner)
class PartnerAdmin(BackOfficeAdmin):
    # Chain, the HMAC key and "errors as 200" are on the object page.
    list_display = [
        "id",
        "name_display",
        "merchant_list",
        "api_key_prefix",
        "active",
        "created_display",
    ]
    list_display_links = ["id", "name_display"]
    list_filter = ["active"]  # a small table: a handful of partners
    list_select_related = ["primary_merchant"]
    search_fields = ["name"]
    sortable_by = ["id", "name_display", "created_display"]
    fields = [
        "id",
        "name",
        "user",
        "primary_merchant",
        "merchant_list",
        "api_key_prefix",
        "masked_hmac_key",
        "chain",
        "errors_as_200",
        "active",
        "created",
        "deductions",
    ]
    readonly_fields = fields
    # What the 403 page names for the rotation page (ledger.admin.denied).
    denied_permissions = {"rotate": ["partners.change_partner"]}

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("merchants")

    def has_add_permission(self, request) -> bool:
        return False  # `manage.py create_partner` provisions partners and prints their secrets

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_rotate_credentials_permission(self, request) -> bool:
        return request.user.has_perm("partners.change_partner")

    def object_buttons(self, request, obj):
        buttons = super().object_buttons(request, obj)
        if self.has_rotate_credentials_permission(request):
            url = reverse("admin:partners_partner_rotate", args=[obj.pk])
            buttons.insert(0, ("Rotate credentials", url))
        return buttons

    def get_urls(self):
        return [
            path(
                "<path:object_id>/rotate-credentials/",
                self.admin_site.admin_view(self.rotate_view),
                name="partners_partner_rotate",
            ),
            *super().get_urls(),
        ]

    def rotate_view(self, request, object_id):
        if not self.has_rotate_credentials_permission(request):
            raise PermissionDenied
        partner = self.get_object(request, unquote(object_id))
        if partner is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = RotateForm(request.POST if request.method == "POST" else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "object": partner,
            "form": form,
            "subtitle": None,
        }
        request.current_app = self.admin_site.name
        if request.POST.get("post") == "yes" and form.is_valid():
            credentials = services.partner_rotate_credentials(
                actor=request.user,
                channel=Channel.ADMIN,
                partner=partner,
                reason=form.cleaned_data["reason"],
            )
            context.update(title=f"New credentials of {partner.name}", credentials=credentials)
            response = TemplateResponse(
                request, "admin/backoffice/partner_credentials.html", context
            )
            # Shown once: never cached, never put in a message or the session.
            response["Cache-Control"] = "no-store"
            return response
        context["title"] = f"Rotate the credentials of {partner.name}?"
        return TemplateResponse(request, "admin/backoffice/partner_rotate.html", context)

    @admin.display(description="Name", ordering="name")
    def name_display(self, obj):
        return truncated(obj.name, "m")

    @admin.display(description="Merchants")
    def merchant_list(self, obj):
        """The primary merchant first."""
        names = sorted(
            (m.name for m in obj.merchants.all()),
            key=lambda name: name != getattr(obj.primary_merchant, "name", None),
        )
        return truncated(", ".join(names), "m")

    @admin.display(description="HMAC key (X-API-KEY)")
    def masked_hmac_key(self, obj):
        return f"{obj.hmac_key[:5]}{MASK}" if obj.hmac_key else "-"

    @admin.display(description="Deductions")
    def deductions(self, obj):
        return changelist_link(PointTransaction, "point transactions →", partner__id__exact=obj.pk)
