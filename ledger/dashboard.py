"""The corrections dashboard's numbers: a handful of grouped queries over the history tables.

The admin draws them (`ledger.admin.dashboard`). Corrections are read from the history tables
(indexed on `operation` and `history_date`), so the page costs the same few queries whatever
the size of the ledger.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from ledger import corrections
from ledger.history import actor_label
from ledger.models import Approval, PointTransaction
from partners.models import Partner

DAYS = 30

# Correction kinds, from the corrections registry: operation -> (label, colour), grouped by
# the history table that records exactly one row per correction.
PALETTE = ["#417690", "#79aec8", "#c4704f", "#e1a95f", "#5b8c5a", "#a5c882", "#9b7bb8", "#b8b07b"]
KINDS = {
    kind.operation: (kind.label, PALETTE[i % len(PALETTE)])
    for i, kind in enumerate(corrections.recorded_kinds())
}
SOURCES = [
    (model, [kind.operation for kind in corrections.recorded_kinds() if kind.model is model])
    for model in dict.fromkeys(kind.model for kind in corrections.recorded_kinds())
]


def _corrections(model, operations, since):
    return model.history.filter(history_date__gte=since, operation__in=operations)


@dataclass
class Dashboard:
    days: list[dt.date]
    per_day: dict[str, list[int]]  # operation -> count per day
    totals: dict[str, int]
    top_reasons: list[tuple[str, int]]
    top_actors: list[tuple[str, int]]
    settlement: list[dict]
    approvals: dict[str, int] | None = None  # approvals requested/approved/... in the period


def _union_top(column: str, since: dt.datetime, limit: int) -> list[tuple[object, int]]:
    """Top values of a history column over every correction, exact across the three tables."""
    parts, params = [], []
    for model, operations in SOURCES:
        table = connection.ops.quote_name(model.history.model._meta.db_table)
        marks = ", ".join(["%s"] * len(operations))
        parts.append(
            f"SELECT {column} AS value FROM {table} "  # noqa: S608 - names from _meta, values bound
            f"WHERE history_date >= %s AND operation IN ({marks})"
        )
        params += [since, *operations]
    sql = (
        f"SELECT value, COUNT(*) AS n FROM ({' UNION ALL '.join(parts)}) AS corrections "  # noqa: S608
        "GROUP BY value ORDER BY n DESC, value LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [(value, n) for value, n in cursor.fetchall()]


def _settlement(since: dt.datetime) -> list[tuple[str | None, str, int, int]]:
    """(partner name, kind, points, count) of deductions and reverts since `since`: grouped on
    the settlement index alone, then each group named (one statement)."""
    qn = connection.ops.quote_name
    txns, partners = PointTransaction._meta.db_table, Partner._meta.db_table
    sql = (
        "SELECT p.name, s.kind, s.points, s.n FROM ("  # noqa: S608 - names from _meta
        "SELECT partner_id, kind, CAST(SUM(points) AS BIGINT) AS points, COUNT(*) AS n "
        f"FROM {qn(txns)} WHERE created >= %s AND kind IN (%s, %s) GROUP BY partner_id, kind"
        f") AS s LEFT JOIN {qn(partners)} p ON p.id = s.partner_id"
    )
    kinds = [PointTransaction.Kind.DEDUCT, PointTransaction.Kind.REVERT]
    with connection.cursor() as cursor:
        cursor.execute(sql, [since, *kinds])
        return cursor.fetchall()


def build(*, days: int = DAYS, now: dt.datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    today = timezone.localdate(now)
    first = today - dt.timedelta(days=days - 1)
    since = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    day_list = [first + dt.timedelta(days=i) for i in range(days)]
    index = {day: i for i, day in enumerate(day_list)}

    per_day = {op: [0] * days for op in KINDS}
    for model, operations in SOURCES:
        rows = (
            _corrections(model, operations, since)
            .annotate(day=TruncDate("history_date"))
            .values("day", "operation")
            .annotate(n=Count("*"))  # not a column: the corrections index answers alone
            .order_by()
        )
        for row in rows:
            if row["day"] in index:
                per_day[row["operation"]][index[row["day"]]] += row["n"]
    totals = {op: sum(counts) for op, counts in per_day.items()}

    top_reasons = [
        (reason or "(no reason)", n) for reason, n in _union_top("history_change_reason", since, 10)
    ]
    actor_counts = _union_top("history_user_id", since, 10)
    users = (
        get_user_model()
        .objects.select_related("partner")
        .in_bulk([user_id for user_id, _ in actor_counts if user_id is not None])
    )
    top_actors = [(actor_label(users.get(user_id)), n) for user_id, n in actor_counts]

    sums = defaultdict(lambda: {"deducted": 0, "deductions": 0, "reverted": 0, "reverts": 0})
    for name, kind, points, n in _settlement(since):
        entry = sums[name or "(no partner)"]
        if kind == PointTransaction.Kind.DEDUCT:
            entry["deducted"] += -points
            entry["deductions"] += n
        else:
            entry["reverted"] += points
            entry["reverts"] += n
    settlement = sorted(
        ({"partner": name, **v, "net": v["deducted"] - v["reverted"]} for name, v in sums.items()),
        key=lambda e: (-e["net"], e["partner"]),
    )
    return Dashboard(
        day_list, per_day, totals, top_reasons, top_actors, settlement, approval_counts(since)
    )


# --- approvals (CONTRACT section 8): each step is one history row of its request ------------
APPROVAL_STEPS = {
    "approval_request": "requested",
    "approval_approve": "approved",
    "approval_reject": "rejected",
    "approval_expire": "expired",
}


def approval_counts(since: dt.datetime) -> dict[str, int]:
    """How many approvals were requested, approved, rejected and expired since `since`."""
    rows = (
        Approval.history.filter(history_date__gte=since, operation__in=APPROVAL_STEPS)
        .values("operation")
        .annotate(n=Count("*"))
        .order_by()
    )
    counts = dict.fromkeys(APPROVAL_STEPS.values(), 0)
    for row in rows:
        counts[APPROVAL_STEPS[row["operation"]]] += row["n"]
    return counts
