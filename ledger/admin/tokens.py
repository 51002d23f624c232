"""The superuser's page of staff API tokens: prefix, user, created, expiry; never a token.

knox's own admin lists the digest and adds tokens through a form that shows the new key in
a flash message (kept in the session or a cookie). Here tokens are only listed and revoked
(deleted); `manage.py issue_token` issues them.
"""

# knox's admin module registers knox's page when it is first imported. Autodiscovery reaches
# it only after the back-office site has imported this package, so import it here first:
# then this page replaces it whatever the order, and autodiscovery later finds it done.
import knox.admin  # noqa: F401
from django.contrib import admin
from knox.models import AuthToken

admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class StaffTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "created", "expiry"]
    list_display_links = None
    list_select_related = ["user"]
    list_filter = ["user"]
    ordering = ["-created"]
    actions = ["revoke"]

    @admin.display(description="Token starts with", ordering="token_key")
    def prefix(self, obj) -> str:
        return f"{obj.token_key[:8]}…"

    @admin.action(description="Revoke the selected tokens", permissions=["delete"])
    def revoke(self, request, queryset):
        count = queryset.delete()[0]
        self.message_user(request, f"Revoked {count} token(s).")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
