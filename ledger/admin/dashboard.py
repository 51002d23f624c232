"""The corrections dashboard page: `ledger.dashboard`'s numbers drawn as server-rendered SVG."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ledger.dashboard import DAYS, KINDS, build
from ledger.history import can_read_history


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
