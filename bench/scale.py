"""Scale benchmark: 1,000,000 balance updates and 1,000,000 point transactions with their
history and events, bulk-loaded by COPY (outside the request path), then timed: every admin
changelist's first page and a filtered page, the audit log, a history page, the dashboard, a
100,000-row CSV export (time and peak Python memory) and `reconcile`.

The data obeys every ledger invariant (reconcile must pass): amounts, running `points_after`,
one deduction per redemption, reverts matching their deduction, cached balances and points
equal to the ledger and to each customer's latest history row, and the outbox: one event per
ledger row (a cancel its own), as the services write it, numbered 1..n per customer in its
commit order with `event_sequence` = n. Each move has a moment of its own, in that order.

    make bench-scale                  # or: .venv/bin/python bench/scale.py --rows 1000000

One script on purpose (about 500 lines): the COPY loader and the timings share the
shape of the data; the shared set-up lives in bench/common.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import time
import tracemalloc
from pathlib import Path

import common
from common import ROOT

PER_CUSTOMER = 100
# Moments per customer: its creation, its stamp card's, up to 10 stamps, and per ledger row
# pair a balance update, its cancel, a point transaction (at most 312 of them).
SLOTS = 4 * PER_CUSTOMER
# Customers whose rows are sent together: the loader's memory is that of one chunk.
CHUNK = 500
# The data spans the 90 days up to today, so the dashboard's 30-day window has its share.
START = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START -= dt.timedelta(days=90)


class Copier:
    """Rows of a model, given as dicts of attnames (other columns take the field defaults, or
    the database's for `skip`ped ones), buffered as tuples and sent by COPY a chunk at a time
    (a connection runs one COPY at a time, so the tables take turns)."""

    def __init__(self, model, *, skip: tuple[str, ...] = ()) -> None:
        self.table = model._meta.db_table
        self.fields = [f for f in model._meta.concrete_fields if f.attname not in skip]
        self.defaults = [f.get_default() if f.has_default() else None for f in self.fields]
        self.rows: list[tuple] = []
        self.count = 0

    def write(self, row: dict) -> None:
        self.count += 1
        self.rows.append(
            tuple(row.get(f.attname, d) for f, d in zip(self.fields, self.defaults, strict=True))
        )

    def flush(self, cursor) -> None:
        columns = ", ".join(f'"{f.column}"' for f in self.fields)
        with cursor.copy(f'COPY "{self.table}" ({columns}) FROM STDIN') as copy:
            for row in self.rows:
                copy.write_row(row)
        self.rows = []


def history_row(obj: dict, when: dt.datetime, kind: str, operation: str, reason=None) -> dict:
    return {
        **obj,
        "history_date": when,
        "history_type": kind,
        "channel": "command",
        "operation": operation,
        "history_change_reason": reason,
        "request_id": "bulk",
    }


class Events:
    """The outbox rows the services write beside the ledger rows, one customer at a time:
    numbered 1..n in the customer's commit order, attributed as the history rows are (the
    system actor on the command channel, request id "bulk"). The `data` objects take their
    fields from `ledger.events` (its builders read model instances; these rows are dicts)."""

    def __init__(self, copier: Copier, merchant_id: int) -> None:
        from ledger import events
        from ledger.models import Stamp

        self.copier, self.merchant_id, self.events = copier, merchant_id, events
        self.types = events.TYPES
        self.shapes = {
            model: (key, [(name, model._meta.get_field(name).attname) for name in fields], total)
            for model, (key, fields, total) in events.ENTRIES.items()
        }
        self.stamp_fields = [
            (name, Stamp._meta.get_field(name).attname) for name in events.STAMP_FIELDS
        ]
        self.customer_id = self.sequence = 0

    def start(self, customer_id: int) -> None:
        self.customer_id, self.sequence = customer_id, 0

    def entry_object(self, model, row: dict) -> dict:
        """`events.entry_object` of a row."""
        return {name: row.get(attname) for name, attname in self.shapes[model][1]}

    def entry(self, model, operation: str, row: dict, total: int, when, reason=None, original=None):
        """`events.entry_data` of a row and its customer's new total."""
        key, _fields, total_key = self.shapes[model]
        data = {key: self.entry_object(model, row), total_key: total}
        if original is not None:
            data["original"] = original
        self._write(operation, data, when, reason)

    def stamp(self, operation: str, row: dict, count_before: int, when) -> None:
        """`events.stamp_data` of a stamp row."""
        stamp = {name: row[attname] for name, attname in self.stamp_fields}
        self._write(operation, {"stamp": stamp, "count_before": count_before}, when, None)

    def _write(self, operation: str, data: dict, when, reason) -> None:
        self.sequence += 1
        # No id or txid: the sequence and the trigger fill them (a BEFORE INSERT row trigger,
        # which COPY fires too, so each chunk's events carry its transaction's id).
        self.copier.write(
            {
                "event_id": self.events.new_event_id(),
                "type": self.types[operation],
                "created": when,
                "merchant_id": self.merchant_id,
                "customer_id": self.customer_id,
                "customer_sequence": self.sequence,
                "actor_type": "system",
                "actor_name": "system",
                "channel": "command",
                "reason": reason or None,
                "request_id": "bulk",
                "data": json.dumps(data),
            }
        )


def load(rows: int, seed: int = 7) -> dict:
    from django.db import connection

    from accounts.models import Customer
    from ledger.models import BalanceUpdate, Event, PointTransaction, Stamp
    from ledger.roles import staff_create

    # The customers come by COPY below; the rest through the services.
    world = common.provision("Scale", 0, stores=5, max_stamps=10)
    admin, _ = staff_create(username="scale-admin", role="admin", password=None)

    rng = random.Random(seed)
    customers = rows // PER_CUSTOMER
    span = dt.timedelta(days=90).total_seconds()
    total = customers * SLOTS

    def moment(c: int, slot: int) -> dt.datetime:
        return START + dt.timedelta(seconds=span * ((c - 1) * SLOTS + slot) / total)

    started = time.monotonic()
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # psycopg's own cursor, for COPY
        out = {
            name: Copier(model)
            for name, model in [
                ("customer", Customer),
                ("stamp", Stamp),
                ("bu", BalanceUpdate),
                ("pt", PointTransaction),
            ]
        }
        hist = {
            name: Copier(model.history.model, skip=("history_id",))
            for name, model in [
                ("customer", Customer),
                ("stamp", Stamp),
                ("bu", BalanceUpdate),
                ("pt", PointTransaction),
            ]
        }
        event_rows = Copier(Event, skip=("id", "txid"))
        events = Events(event_rows, world.merchant_id)
        copiers = [*out.values(), *hist.values(), event_rows]  # customers before their rows
        bu_id = pt_id = 0
        for c in range(1, customers + 1):
            balance = points = 0
            events.start(c)
            # Each move of the customer at a moment of its own, in the order it commits.
            clock = iter(range(SLOTS))
            created = moment(c, next(clock))
            stamp = {
                "id": c,
                "merchant_id": world.merchant_id,
                "card_id": world.card_id,
                "customer_id": c,
                "count": 0,
                "max_stamps": 10,
                "start_date": START.date(),
                "end_date": START.date() + dt.timedelta(days=365),
                "active": True,
                "redeemed": False,
                "created": moment(c, next(clock)),
            }
            hist["stamp"].write(history_row(stamp, stamp["created"], "+", "stamp_create"))
            events.stamp("stamp_create", stamp, 0, stamp["created"])
            last_deduction = None
            for i in range(PER_CUSTOMER):
                if i < c % 11:  # stamps of 0 to 10 of the card's 10, one stamp_add each
                    when = moment(c, next(clock))
                    stamp = {**stamp, "count": stamp["count"] + 1}
                    hist["stamp"].write(history_row(stamp, when, "~", "stamp_add"))
                    events.stamp("stamp_add", stamp, stamp["count"] - 1, when)
                bu_id += 1
                when = moment(c, next(clock))
                debit = balance > 50 and rng.random() < 0.4
                amount = rng.randint(1, 50) if debit else rng.randint(1, 500)
                balance += -amount if debit else amount
                operation = "balance_debit" if debit else "balance_credit"
                row = {
                    "id": bu_id,
                    "customer_id": c,
                    "merchant_id": world.merchant_id,
                    "store_id": world.store_ids[bu_id % 5],
                    "type": "stamps",
                    "effect": "debit" if debit else "credit",
                    "amount": amount,
                    "status": "Success",
                    "balance_after": balance,
                    "reason": "",
                    "created": when,
                    "canceled_at": None,
                    "cancel_reason": "",
                }
                hist["bu"].write(history_row(row, when, "+", operation))
                events.entry(BalanceUpdate, operation, row, balance, when)
                if debit and rng.random() < 0.05:  # canceled before the customer's next move
                    when = moment(c, next(clock))
                    original = events.entry_object(BalanceUpdate, row)
                    balance += amount
                    reason = "bulk correction"
                    row = {
                        **row,
                        "status": "Canceled",
                        "canceled_at": when,
                        "cancel_reason": reason,
                    }
                    hist["bu"].write(history_row(row, when, "~", "balance_update_cancel", reason))
                    events.entry(
                        BalanceUpdate,
                        "balance_update_cancel",
                        row,
                        balance,
                        when,
                        reason,
                        original=original,
                    )
                out["bu"].write(row)
                pt_id += 1
                when = moment(c, next(clock))
                row = {
                    "id": pt_id,
                    "customer_id": c,
                    "merchant_id": world.merchant_id,
                    "partner_transaction_id": f"bulk_{pt_id}",
                    "created": when,
                    "redemption_id": "",
                    "reason": "",
                    "confirmation_status": "",
                    "txn_hash": "",
                    "needs_attention": False,
                }
                original = None
                if last_deduction and rng.random() < 0.1:
                    # A revert on the command channel is a staff correction: it has a reason.
                    kind, delta, operation = (
                        "revert",
                        -last_deduction["points"],
                        "point_deduction_revert",
                    )
                    original = events.entry_object(PointTransaction, last_deduction)
                    row.update(
                        reverts_id=last_deduction["id"],
                        partner_id=world.partner_id,
                        redemption_id=last_deduction["redemption_id"],
                        reason="bulk revert",
                    )
                    last_deduction = None
                elif points >= 50 and rng.random() < 0.7:
                    kind, delta, operation = "deduct", -rng.randint(1, 50), "point_deduct"
                    row.update(partner_id=world.partner_id, redemption_id=f"r-{pt_id}")
                else:
                    kind, delta, operation = "credit", rng.randint(50, 500), "points_credit"
                points += delta
                row.update(kind=kind, points=delta, points_after=points)
                if kind == "deduct":
                    last_deduction = row
                out["pt"].write(row)
                reason = row["reason"] or None
                hist["pt"].write(history_row(row, when, "+", operation, reason))
                events.entry(PointTransaction, operation, row, points, when, reason, original)
            out["stamp"].write(stamp)
            customer = {
                "id": c,
                "merchant_id": world.merchant_id,
                "email": f"c{c}@scale.example",
                "member_id": f"S{c}",
                "wallet_address": f"0x{c:040x}",
                "name": f"Customer {c}",
                "status": "Blue",
                "balance": balance,
                "points": points,
                "event_sequence": events.sequence,
                "created": created,
            }
            out["customer"].write(customer)
            hist["customer"].write(history_row(customer, created, "+", "customer_create"))
            if c % CHUNK == 0 or c == customers:  # memory stays that of one chunk
                for copier in copiers:
                    copier.flush(cursor)
        history_rows = sum(h.count for h in hist.values())
        for table in (
            "accounts_customer",
            "ledger_stamp",
            "ledger_balanceupdate",
            "ledger_pointtransaction",
        ):
            django_cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table}))"
            )
        # What autovacuum does soon after a bulk insert, done at once: statistics, and the
        # visibility map that lets index-only scans (the dashboard's) skip the table.
        django_cursor.execute("VACUUM ANALYZE")
    loaded = time.monotonic() - started
    return {
        "customers": customers,
        "balance_updates": bu_id,
        "point_transactions": pt_id,
        "history_rows": history_rows,
        "events": event_rows.count,
        "seconds": loaded,
        "admin": admin,
        "busy_customer": customers // 2,
    }


def timed(client, url: str, repeats: int = 5) -> tuple[float, float, int]:
    samples = []
    status = 0
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        status = response.status_code
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples), status


def csv_export(client, url: str) -> tuple[int, float, float, float]:
    """Rows, seconds, seconds under tracemalloc, and peak Python MiB of the streamed export.

    Run twice: tracemalloc hooks every allocation and made the export several times slower
    than it runs in a server (the 78.6 s of 2026-11-22 were measured under it), so the time
    is taken without it and the peak memory in a second run.
    """

    def stream(traced: bool) -> tuple[int, float, float]:
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"the CSV export answered {response.status_code}: {url}")
        lines = 0
        for chunk in response.streaming_content:
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        peak = 0.0
        if traced:
            peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024
            tracemalloc.stop()
        return lines - 1, seconds, peak

    rows, seconds, _ = stream(traced=False)
    _, traced_seconds, peak = stream(traced=True)
    return rows, seconds, traced_seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rows",
        type=int,
        default=1_000_000,
        help="balance updates, and as many point transactions (at least 1,000: CI runs 20,000)",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="renders of each page (CI checks them once)"
    )
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS-scale.md"))
    args = parser.parse_args()
    if args.rows < 1000:
        parser.error("--rows must be at least 1000")
    common.configure(
        os.environ.get("SCALE_DB_NAME", "loyalty_scale"),
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
        ACCESS_LOG_LEVEL="WARNING",
    )
    common.create_database()
    from django.core.management import call_command

    # The pages render with production settings, whose static files storage needs the
    # manifest that collectstatic writes: without it every admin page is a 500 (a fresh
    # clone has none). `make serve` collects into the same STATIC_ROOT.
    call_command("collectstatic", interactive=False, verbosity=0)
    data = load(args.rows)
    print(
        f"loaded {data['balance_updates']} balance updates, {data['point_transactions']} "
        f"point transactions, {data['history_rows']} history rows, {data['events']} events "
        f"in {data['seconds']:.0f}s"
    )

    from django.test import Client

    from ledger import reconcile
    from ledger.models import PointTransaction

    # A page that fails answers its 500 as a server would, and the run fails at the end.
    client = Client(raise_request_exception=False)
    client.force_login(data["admin"])
    busy = data["busy_customer"]
    deductions = PointTransaction.objects.filter(kind="deduct").order_by("id")
    deduction = deductions.values_list("pk", flat=True)[min(500, deductions.count() - 1)]
    # The audit log filters by whole days; point-transaction history spreads evenly over 90.
    per_day = data["point_transactions"] / 90
    window_start = (START + dt.timedelta(days=40)).date()
    window_end = window_start + dt.timedelta(days=max(0, round(100_000 / per_day) - 1))
    pages = [
        ("balance updates", "/admin/ledger/balanceupdate/"),
        ("balance updates, canceled", "/admin/ledger/balanceupdate/?status__exact=Canceled"),
        (
            "balance updates, one customer",
            f"/admin/ledger/balanceupdate/?customer__id__exact={busy}",
        ),
        ("point transactions", "/admin/ledger/pointtransaction/"),
        ("point transactions, reverts", "/admin/ledger/pointtransaction/?kind__exact=revert"),
        ("customers", "/admin/accounts/customer/"),
        ("customers, search", f"/admin/accounts/customer/?q=c{busy}%40scale.example"),
        ("stamps", "/admin/ledger/stamp/"),
        ("stamps, active", "/admin/ledger/stamp/?active__exact=1"),
        ("customer page", f"/admin/accounts/customer/{busy}/change/"),
        ("history page (deduction)", f"/admin/ledger/pointtransaction/{deduction}/history/"),
        ("history page (customer)", f"/admin/accounts/customer/{busy}/history/"),
        ("audit log", "/admin/audit-log/"),
        ("audit log, filtered", "/admin/audit-log/?model=pointtransaction&q=&channel=command"),
        ("dashboard", "/admin/dashboard/"),
    ]
    rows = []
    for name, url in pages:
        median, worst, status = timed(client, url, max(1, args.repeats))
        rows.append((name, url, median, worst, status))
        print(f"{name:34} {median:8.1f} ms (max {worst:8.1f})  HTTP {status}", flush=True)
    since, until = window_start.isoformat(), window_end.isoformat()
    from urllib.parse import urlencode

    csv_url = "/admin/audit-log.csv?" + urlencode(
        {"since": since, "until": until, "model": "pointtransaction"}
    )
    csv_result = (csv_url, *csv_export(client, csv_url))
    _, csv_rows, csv_seconds, csv_traced_seconds, csv_peak = csv_result
    print(
        f"CSV export: {csv_rows} rows in {csv_seconds:.1f}s ({csv_traced_seconds:.1f}s under "
        f"tracemalloc), peak Python memory {csv_peak:.1f} MiB"
    )
    started = time.perf_counter()
    violations, _counts = reconcile.run()
    reconcile_seconds = time.perf_counter() - started
    print(f"reconcile: {len(violations)} violations in {reconcile_seconds:.1f}s")
    write(
        Path(args.results),
        args,
        data,
        rows,
        csv_result,
        (violations, reconcile_seconds),
    )
    failed = [f"{name} ({url}): HTTP {status}" for name, url, _, _, status in rows if status != 200]
    if failed:
        raise SystemExit("pages that did not answer 200:\n  " + "\n  ".join(failed))
    if violations:
        raise SystemExit("reconcile found violations in the bulk-loaded data")


def write(path: Path, args, data, rows, csv_result, reconcile_result) -> None:
    from ledger.history import EXPORT_BATCH

    commit = common.commit()
    csv_url, csv_rows, csv_seconds, csv_traced_seconds, csv_peak = csv_result
    violations, reconcile_seconds = reconcile_result
    lines = [
        "# Scale benchmark results",
        "",
        f"Run on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC at commit {commit}, "
        f"{os.cpu_count()} CPUs, PostgreSQL on the same machine. Command: `make bench-scale`.",
        "",
        f"Data: {data['customers']:,} customers, {data['balance_updates']:,} balance updates, "
        f"{data['point_transactions']:,} point transactions, {data['history_rows']:,} history "
        f"rows, {data['events']:,} events, bulk-loaded by COPY in {data['seconds']:.0f} s. "
        "Pages are rendered in-process by Django's test client as a logged-in superuser "
        "(server time, no network), "
        f"{max(1, args.repeats)} time(s) each.",
        "",
        "| page | median ms | max ms | HTTP | target < 300 ms |",
        "|---|---:|---:|---:|---|",
    ]
    for name, url, median, worst, status in rows:
        verdict = "met" if worst < 300 else ("median met" if median < 300 else "MISSED")
        lines.append(f"| {name} (`{url}`) | {median:.0f} | {worst:.0f} | {status} | {verdict} |")
    lines += [
        "",
        f"- CSV export of the audit log (`{csv_url}`): {csv_rows:,} rows in {csv_seconds:.1f} s "
        f"({csv_rows / csv_seconds:,.0f} rows/s). Peak Python memory while streaming "
        f"{csv_peak:.1f} MiB (constant: keyset batches of {EXPORT_BATCH:,} rows per table), "
        f"measured in a second run under tracemalloc, which took {csv_traced_seconds:.1f} s.",
        f"- `reconcile` over all of it: {reconcile_seconds:.1f} s, {len(violations)} violations "
        f"(target < 20 s: {'met' if reconcile_seconds < 20 else 'MISSED'}).",
    ]
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
