"""Who may call what: staff users with the Django permission each endpoint declares."""

from __future__ import annotations

from rest_framework.permissions import BasePermission


class StaffPermission(BasePermission):
    """Staff users (or superusers) holding every permission `view.required_permissions()`
    names for the current action. Partner service users are not staff, so they get 403."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or not user.is_active:
            return False
        if not (user.is_staff or user.is_superuser):
            return False
        return user.has_perms(view.required_permissions())
