"""Who may read history across every audited model (the audit log, the dashboard)."""

from __future__ import annotations

from ledger.history.versions import AUDITED_MODELS

HISTORY_PERMISSIONS = [
    f"{model._meta.app_label}.view_historical{model._meta.model_name}"
    for model in AUDITED_MODELS.values()
]


def can_read_history(user) -> bool:
    """The audit log and the dashboard span every audited model: all their histories."""
    return user.is_active and user.is_staff and user.has_perms(HISTORY_PERMISSIONS)
