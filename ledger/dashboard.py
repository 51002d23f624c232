"""The corrections dashboard: a handful of grouped queries drawn as server-rendered SVG.

Corrections are read from the history tables (indexed on `operation` and `history_date`),
so the page costs the same few queries whatever the size of the ledger.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ledger.admin.audit_log import can_read_history
from ledger.history import actor_label
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from partners.models import Partner

DAYS = 30

# Correction kinds: (operation, label, colour), grouped by the history table that records
# exactly one row per correction.
KINDS = {
    "stamp_remove": ("Stamp removed", "#417690"),
    "stamp_set_count": ("Stamp count set", "#79aec8"),
    "balance_cancel": ("Balance update canceled", "#c4704f"),
    "balance_adjust": ("Balance adjusted", "#e1a95f"),
    "points_revert": ("Deduction reverted", "#5b8c5a"),
    "points_adjust": ("Points adjusted", "#a5c882"),
}
SOURCES = [
    (Stamp, ["stamp_remove", "stamp_set_count"]),
    (BalanceUpdate, ["balance_cancel", "balance_adjust"]),
    (PointTransaction, ["points_revert", "points_adjust"]),
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
    return Dashboard(day_list, per_day, totals, top_reasons, top_actors, settlement)


# --- SVG -----------------------------------------------------------------------------------


def _nice_max(value: int) -> int:
    """The top of the y axis: four equal whole steps of 1, 2 or 5 times a power of ten."""
    unit = 1
    while unit * 4 < value:
        for factor in (2, 2.5, 2):  # 1 -> 2 -> 5 -> 10 -> 20 -> 50 ...
            unit = int(unit * factor)
            if unit * 4 >= value:
                break
    return unit * 4


def stacked_bars(days: list[dt.date], series: list[tuple[str, str, list[int]]]) -> SafeString:
    """Columns per day, stacked by series (label, colour, counts)."""
    width, height, left, bottom, top = 760, 240, 40, 28, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    totals = [sum(s[2][i] for s in series) for i in range(len(days))]
    peak = _nice_max(max(totals, default=0))
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.7, 1)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Corrections per day by kind" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in range(5):
        value = peak * tick // 4
        y = top + plot_h - plot_h * tick / 4
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
        )
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for label, colour, counts in series:
            n = counts[i]
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{day:%Y-%m-%d} {escape(label)}: {n}</title></rect>'
            )
        if i % 5 == 0 or i == len(days) - 1:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle">'
                f"{day:%m-%d}</text>"
            )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped or numeric


def horizontal_bars(items: list[tuple[str, list[tuple[int, str]]]], label: str) -> SafeString:
    """One row per item: (name, [(value, colour), ...]) drawn as bars side by side."""
    row_h, label_w, width = 26, 230, 760
    bars_per_row = max((len(values) for _, values in items), default=1)
    height = max(len(items), 1) * row_h * bars_per_row + 10
    peak = max((v for _, values in items for v, _ in values), default=0) or 1
    plot_w = width - label_w - 80
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    y = 5
    for name, values in items:
        short = name if len(name) <= 34 else name[:33] + "…"
        out.append(
            f'<text x="{label_w - 8}" y="{y + row_h * len(values) / 2 + 4:.1f}" '
            f'text-anchor="end"><title>{escape(name)}</title>{escape(short)}</text>'
        )
        for value, colour in values:
            w = plot_w * value / peak
            out.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{colour}"><title>{escape(name)}: {value}</title></rect>'
                f'<text x="{label_w + w + 6:.1f}" y="{y + row_h / 2 + 3:.1f}">{value}</text>'
            )
            y += row_h
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped or numeric


def dashboard_view(request, site):
    if not can_read_history(request.user):
        raise PermissionDenied
    data = build()
    series = [(KINDS[op][0], KINDS[op][1], counts) for op, counts in data.per_day.items()]
    context = {
        **site.each_context(request),
        "title": "Corrections dashboard",
        "subtitle": None,
        "data": data,
        "days": DAYS,
        "legend": [(KINDS[op][0], KINDS[op][1], data.totals[op]) for op in KINDS],
        "total": sum(data.totals.values()),
        "per_day_chart": stacked_bars(data.days, series),
        "reasons_chart": horizontal_bars(
            [(reason, [(n, "#417690")]) for reason, n in data.top_reasons], "Top reasons"
        ),
        "actors_chart": horizontal_bars(
            [(actor, [(n, "#c4704f")]) for actor, n in data.top_actors], "Top actors"
        ),
        "settlement_chart": horizontal_bars(
            [
                (e["partner"], [(e["deducted"], "#417690"), (e["reverted"], "#5b8c5a")])
                for e in data.settlement
            ],
            "Points deducted and reverted per partner",
        ),
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/backoffice/dashboard.html", context)
