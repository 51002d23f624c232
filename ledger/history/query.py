"""The audit log's query: its filters and cursor checked once, for the admin and the staff API.

Each surface parses its parameters into Python values its own way (the admin's date pickers
give whole days, the staff API's ISO 8601 gives instants) and hands them to `audit_query`,
which returns a query the database can run or raises `InvalidQuery` naming each field it
cannot run: PostgreSQL refuses UTC offsets beyond +/-15:59 that Python accepts, and Python
cannot hold the end of the day 9999-12-31 (each was a 500 in the admin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.utils import timezone

from ledger.history.audit_log import AuditFilters, Cursor

OUT_OF_RANGE = "Enter a date and time between years 1 and 9999."
LAST_DAY = "Enter a date before 9999-12-31."
INVALID_CURSOR = "Invalid cursor."


class InvalidQuery(ValueError):
    """The fields of an audit log query that cannot be run, with a message for each."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _instant(value: dt.datetime) -> dt.datetime:
    """`value` in UTC (a naive value is in the current time zone), or ValueError."""
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError(OUT_OF_RANGE) from exc


def _bound(value: dt.date | dt.datetime | None, *, until: bool) -> dt.datetime | None:
    """A filter bound as a UTC instant: a datetime is one already; a date is a whole day, so
    `since` starts at its start and `until` (inclusive) ends at the start of the next."""
    if value is None or isinstance(value, dt.datetime):
        return value and _instant(value)
    if until:
        if value == dt.date.max:
            raise ValueError(LAST_DAY)
        value += dt.timedelta(days=1)
    return _instant(dt.datetime.combine(value, dt.time.min))


def audit_query(values: Mapping[str, object]) -> tuple[AuditFilters, Cursor | None]:
    """The audit log's filters and the position of the cursor (None without one) from
    `values`: `since`, `until` (each a date, a datetime or None), `actor`, `channel`,
    `model`, `q` (text), `merchant` (an id or None) and `cursor` (a token); other keys are
    ignored, missing ones filter nothing. Raises `InvalidQuery`. A cursor is valid only as
    the audit log issues them (UTC instants)."""
    errors: dict[str, str] = {}
    bounds: dict[str, dt.datetime | None] = {}
    for name in ("since", "until"):
        try:
            bounds[name] = _bound(values.get(name), until=name == "until")
        except ValueError as exc:
            errors[name] = str(exc)
    position = None
    if values.get("cursor"):
        position = Cursor.decode(values["cursor"])
        if position is None:
            errors["cursor"] = INVALID_CURSOR
    if errors:
        raise InvalidQuery(errors)
    filters = AuditFilters(
        since=bounds["since"],
        until=bounds["until"],
        actor=(values.get("actor") or "").strip(),
        channel=values.get("channel") or "",
        model=values.get("model") or "",
        merchant=values.get("merchant"),
        q=(values.get("q") or "").strip(),
    )
    return filters, position
