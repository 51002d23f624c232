"""Reading history: versions of one object and the audit log across every audited model.

Both the admin and the staff API present history through this package, so "who, when,
through which channel, why, before and after" reads the same everywhere, and so does what it
never shows: the values of the fields a model declares in `history_redacted_fields` (a
partner's credentials), masked by every reader here, so every consumer inherits it.

By concern: `versions` (what a version and a change are, the diff and its redaction),
`names` (what a person reads: objects by name, fields and models by verbose name,
operations by label, resolved in bulk per page or batch), `objects` (one object's history),
`audit_log` (every table merged, by cursor), `query` (the
filters and cursor both surfaces accept), `export` (the streamed CSV), `loader` (reading
timestamps in C), `access` (who may read it all).
"""

from ledger.history.access import HISTORY_PERMISSIONS, can_read_history
from ledger.history.audit_log import (
    EXPORT_BATCH,
    AuditFilters,
    Cursor,
    audit_log_page,
    iter_audit_log,
)
from ledger.history.export import CSV_COLUMNS, audit_log_csv
from ledger.history.names import (
    OPERATION_LABELS,
    format_instant,
    model_name,
    name_versions,
    operation_label,
)
from ledger.history.objects import iter_object_history, object_history, object_history_page
from ledger.history.query import InvalidQuery, audit_query
from ledger.history.versions import (
    AUDITED_MODELS,
    REDACTED,
    Change,
    Version,
    actor_label,
    model_label,
    redacted_fields,
    tracked_fields,
)

__all__ = [
    "AUDITED_MODELS",
    "CSV_COLUMNS",
    "EXPORT_BATCH",
    "HISTORY_PERMISSIONS",
    "OPERATION_LABELS",
    "REDACTED",
    "AuditFilters",
    "Change",
    "Cursor",
    "InvalidQuery",
    "Version",
    "actor_label",
    "audit_log_csv",
    "audit_log_page",
    "audit_query",
    "can_read_history",
    "format_instant",
    "iter_audit_log",
    "iter_object_history",
    "model_label",
    "model_name",
    "name_versions",
    "object_history",
    "object_history_page",
    "operation_label",
    "redacted_fields",
    "tracked_fields",
]
