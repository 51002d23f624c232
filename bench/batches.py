"""Bulk corrections benchmark (`make bench-batches`): preview and apply an N-row CSV.

Creates a merchant with N customers in a database of its own (bulk-loaded), writes an N-row
CSV of corrections (adjust_points and adjust_balance, one row per customer), uploads it
through the domain module as the staff API does (`ledger.batches.create_batch`, which parses,
stores and previews every row by the real services), then applies it with the worker's own
step in-process (`ledger.batches.run_due`, each row its own transaction) and records:
preview seconds, apply rows/s, and memory: the process's peak RSS (getrusage) before and
after each phase, and Python's traced peak during the preview (tracemalloc, in a second,
smaller run, as tracing slows Python down). Targets: preview < 60 s and apply >= 500 rows/s
for 100,000 rows, in constant memory.

    python bench/batches.py --rows 100000 [--results bench/RESULTS-batches.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import common
from common import ROOT


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_customers(merchant_id: int, count: int) -> None:
    """N customers of the merchant, by COPY (the benchmark measures batches, not sign-ups)."""
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Customer

    table = Customer._meta.db_table
    now = timezone.now()
    columns = ["merchant_id", "email", "member_id", "wallet_address", "name", "status"]
    columns += ["balance", "points", "event_sequence", "created"]
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for i in range(count):
            copy.write_row(
                [merchant_id, f"c{i}@bench.example", f"B-{i}", "", "", "Blue", 0, 0, 0, now]
            )


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("kind,target,amount,reason\r\n")
        for i in range(count):
            kind = "adjust_points" if i % 2 == 0 else "adjust_balance"
            target = f"B-{i}" if i % 3 else f"c{i}@bench.example"
            out.write(f"{kind},{target},{1 + i % 5},\r\n")


def run(count: int, *, trace: bool = False, apply_seconds: float | None = None) -> dict:
    from accounts.models import Merchant
    from ledger import batches
    from ledger.models import CorrectionBatch, CorrectionBatchRow
    from ledger.roles import staff_create
    from loyalty.audit import Channel, audited

    with audited(actor=None, channel=Channel.COMMAND, operation="bench"):
        merchant = Merchant.objects.create(name=f"Batches bench {count}")
    support, _ = staff_create(username=f"bench-support-{count}-{trace}", role="support")
    load_customers(merchant.pk, count)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.csv"
        write_csv(path, count)
        size = path.stat().st_size
        rss_start = rss_mib()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        with path.open("rb") as upload:
            batch = batches.create_batch(
                actor=support,
                channel=Channel.STAFF_API,
                merchant=merchant,
                reason="bench: bulk correction",
                file=upload,
                filename="batch.csv",
            )
        preview_seconds = time.perf_counter() - started
        traced_peak = None
        if trace:
            traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        rss_preview = rss_mib()
    assert (batch.total, batch.ready) == (count, count), (batch.total, batch.ready)
    result = {
        "rows": count,
        "csv_mib": size / 2**20,
        "preview_seconds": preview_seconds,
        "rss_start": rss_start,
        "rss_preview": rss_preview,
        "traced_peak": traced_peak,
    }
    if trace:
        return result
    batches.apply_batch(batch, support, channel=Channel.STAFF_API)
    started = time.perf_counter()
    while batches.run_due():
        if apply_seconds and time.perf_counter() - started > apply_seconds:
            break  # a sample of the apply: its rate, not its end
    elapsed = time.perf_counter() - started
    applied = CorrectionBatchRow.objects.filter(batch=batch, status="applied").count()
    batch = CorrectionBatch.objects.get(pk=batch.pk)
    if not apply_seconds:
        assert (batch.status, batch.applied) == ("completed", count), (batch.status, batch.applied)
    result |= {"apply_seconds": elapsed, "applied": applied, "rss_apply": rss_mib()}
    return result


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({model or platform.machine()}), "
        f"Python {platform.python_version()}, load average at start {load}"
    )


NOTES = "<!-- notes: kept by bench/batches.py -->"


def write(path: Path, full: dict, traced: dict, started_on: str, commit: str) -> None:
    from django.conf import settings

    rows = full["rows"]
    rate = full["applied"] / full["apply_seconds"]
    sampled = ""
    if full["applied"] < rows:
        sampled = f" (a sample: the first {full['applied']:,} rows, then stopped)"
    preview_ok = "met" if full["preview_seconds"] < 60 else "MISSED"
    apply_ok = "met" if rate >= 500 else "MISSED"
    lines = [
        "# Bulk corrections benchmark results",
        "",
        f"Run on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC at commit {commit}; "
        f"{started_on}. PostgreSQL on the same machine. Command: `make bench-batches "
        f"BATCHES_ARGS='{' '.join(sys.argv[1:])}'`. The machine is shared with other jobs "
        "(see the load average): the figures are what this run measured, not a best case.",
        "",
        f"Data: a merchant with {rows:,} customers; a CSV of {rows:,} rows "
        f"({full['csv_mib']:.1f} MiB; adjust_points and adjust_balance alternating, targets "
        "by member id and by email), uploaded through `ledger.batches.create_batch` (parse, "
        "resolve, store, preview by the real services in rolled-back transactions on "
        f"{settings.BATCH_PREVIEW_THREADS} connection(s)) and applied by the worker's step "
        "`ledger.batches.run_due` in-process (chunks of "
        f"{settings.BATCH_CHUNK} rows, each row its own transaction, on "
        f"{settings.BATCH_THREADS} connection(s), rounds of {settings.BATCH_STEP_SECONDS:g} s).",
        "",
        "| measure | result | target |",
        "|---|---:|---|",
        f"| preview of {rows:,} rows | {full['preview_seconds']:.1f} s | < 60 s: {preview_ok} |",
        f"| apply | {rate:,.0f} rows/s ({full['applied']:,} rows in "
        f"{full['apply_seconds']:.1f} s{sampled}) | >= 500 rows/s: {apply_ok} |",
        f"| peak RSS (getrusage) before the upload / after preview / after apply | "
        f"{full['rss_start']:.0f} / {full['rss_preview']:.0f} / {full['rss_apply']:.0f} MiB | "
        "constant |",
        f"| Python's traced peak during a preview of {traced['rows']:,} rows (tracemalloc) | "
        f"{traced['traced_peak']:.1f} MiB | constant |",
        "",
        "Memory is constant in the number of rows: rows stream from the CSV reader into the "
        "database in chunks of 1,000 (targets resolved with one query per chunk and kind), "
        "and the preview and the worker read them back a chunk at a time. The RSS figures "
        "include Django and the benchmark's own set-up (the process's high-water mark).",
        "",
    ]
    # Notes written by people below the marker survive a new run.
    notes = ""
    if path.exists() and NOTES in (old := path.read_text()):
        notes = old[old.index(NOTES) :]
    path.write_text("\n".join(lines) + ("\n" + notes if notes else ""))
    print(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--trace-rows", type=int, default=None)
    parser.add_argument(
        "--apply-seconds",
        type=float,
        default=None,
        help="Stop applying after this long and report the rate so far (default: apply all).",
    )
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS-batches.md"))
    args = parser.parse_args()
    common.configure("loyalty_bench_batches")
    started_on = machine()
    commit = common.commit()
    common.create_database()
    traced = run(args.trace_rows or max(1, min(args.rows // 10, 2000)), trace=True)
    print(f"traced preview: {traced}", flush=True)
    full = run(args.rows, apply_seconds=args.apply_seconds)
    print(f"full run: {full}", flush=True)
    write(Path(args.results), full, traced, started_on, commit)


if __name__ == "__main__":
    main()
