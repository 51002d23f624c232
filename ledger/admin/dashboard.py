"""The corrections dashboard page: `ledger.dashboard`'s numbers drawn as server-rendered SVG.

Each bar, reason and actor links to the audit log filtered to what it counts (the audit
log's own parameters: `since`, `until`, `model`, `actor`, `q`; ledger.history.query).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

from ledger.dashboard import DAYS, KINDS, SOURCES, build
from ledger.history import can_read_history

# The history table (the audit log's `model`) that records each kind of correction.
MODEL_OF = {op: model._meta.model_name for model, ops in SOURCES for op in ops}
Q_MAX = 200  # the audit log's "Reason contains" accepts this much


def audit_log_url(**params) -> str:
    """The audit log filtered by `params` (empty values left out)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse("admin:audit_log") + (f"?{query}" if query else "")


def _linked(href: str | None, inner: str) -> str:
    return f'<a href="{escape(href)}">{inner}</a>' if href else inner


def _nice_max(value: int) -> int:
    """The top of the y axis: four equal whole steps of 1, 2 or 5 times a power of ten."""
    unit = 1
    while unit * 4 < value:
        for factor in (2, 2.5, 2):  # 1 -> 2 -> 5 -> 10 -> 20 -> 50 ...
            unit = int(unit * factor)
            if unit * 4 >= value:
                break
    return unit * 4


def stacked_bars(
    days: list[dt.date], series: list[tuple[str, str, list[int]]], href=None
) -> SafeString:
    """Columns per day, stacked by series (label, colour, counts); `href(day, index of the
    series)` links each piece."""
    width, height, left, bottom, top = 760, 240, 40, 28, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    totals = [sum(s[2][i] for s in series) for i in range(len(days))]
    peak = _nice_max(max(totals, default=0))
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.7, 1)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" role="group" '
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
        for index, (label, colour, counts) in enumerate(series):
            n = counts[i]
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            piece = (
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{day:%Y-%m-%d} {escape(label)}: {n}</title></rect>'
            )
            out.append(_linked(href and href(day, index), piece))
        if i % 5 == 0 or i == len(days) - 1:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle">'
                f"{day:%m-%d}</text>"
            )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped or numeric


def horizontal_bars(
    items: list[tuple[str, list[tuple[int, str]]]], label: str, href=None, width: int = 760
) -> SafeString:
    """One row per item: (name, [(value, colour), ...]) drawn as bars side by side;
    `href(name)` (None: no link) links each row's name and bars."""
    row_h = 26
    label_w = min(230, width * 2 // 5)
    bars_per_row = max((len(values) for _, values in items), default=1)
    height = max(len(items), 1) * row_h * bars_per_row + 10
    peak = max((v for _, values in items for v, _ in values), default=0) or 1
    plot_w = width - label_w - 60
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" role="group" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    fits = (label_w - 8) // 8  # characters of 13 px text in the label column
    y = 5
    for name, values in items:
        link = href(name) if href else None
        short = name if len(name) <= fits else name[: fits - 1] + "…"
        row = [
            f'<text x="{label_w - 8}" y="{y + row_h * len(values) / 2 + 4:.1f}" '
            f'text-anchor="end"><title>{escape(name)}</title>{escape(short)}</text>'
        ]
        for value, colour in values:
            w = plot_w * value / peak
            row.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{colour}"><title>{escape(name)}: {value}</title></rect>'
                f'<text x="{label_w + w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}">{value}</text>'
            )
            y += row_h
        out.append(_linked(link, "".join(row)))
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped or numeric


def dashboard_view(request, site):
    if not can_read_history(request.user):
        raise PermissionDenied
    data = build()
    operations = list(data.per_day)
    series = [(KINDS[op][0], KINDS[op][1], data.per_day[op]) for op in operations]
    since = data.days[0].isoformat() if data.days else None

    def day_url(day, index):
        return audit_log_url(since=day, until=day, model=MODEL_OF.get(operations[index]))

    def reason_url(reason):
        return None if reason == "(no reason)" else audit_log_url(since=since, q=reason[:Q_MAX])

    def actor_url(actor):
        return None if actor == "system" else audit_log_url(since=since, actor=actor)

    context = {
        **site.each_context(request),
        "title": "Corrections dashboard",
        "subtitle": None,
        "data": data,
        "days": DAYS,
        "legend": [(KINDS[op][0], KINDS[op][1], data.totals[op]) for op in KINDS],
        "total": sum(data.totals.values()),
        "audit_log_url": audit_log_url(since=since),
        "per_day_chart": stacked_bars(data.days, series, href=day_url),
        "reasons_chart": horizontal_bars(
            [(reason, [(n, "#417690")]) for reason, n in data.top_reasons],
            "Top reasons",
            href=reason_url,
            width=440,
        ),
        "actors_chart": horizontal_bars(
            [(actor, [(n, "#c4704f")]) for actor, n in data.top_actors],
            "Top actors",
            href=actor_url,
            width=440,
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
