"""The audit log's CSV the plain way (Versions through `csv.writer`): the reference that
`ledger.history.audit_log_csv`, which writes straight from the rows, must equal byte for byte."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from ledger.history.export import CSV_COLUMNS
from ledger.history.versions import Version
from loyalty.spreadsheet import safe_cell


def csv_rows(versions: Iterable[Version]) -> Iterator[list[str]]:
    """The audit log's CSV, as rows for `csv.writer`: what `audit_log_csv` writes."""
    yield CSV_COLUMNS
    for v in versions:
        yield [
            v.history_date.isoformat(),
            safe_cell(v.model),
            str(v.object_id),
            str(v.history_id),
            v.history_type,
            safe_cell(v.actor),
            safe_cell(v.channel),
            safe_cell(v.operation),
            safe_cell(v.reason),
            safe_cell(v.request_id),
            json.dumps(
                [{"field": c.field, "old": c.old, "new": c.new} for c in v.changes], default=str
            ),
            safe_cell(v.approved_by or ""),
            "" if v.approval is None else str(v.approval),
            safe_cell(v.approval_reason),
        ]
