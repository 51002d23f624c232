"""Load benchmark: `make serve` (granian) + PostgreSQL on this machine, signed requests built
ahead of time and replayed by wrk, each endpoint beside a no-op DRF endpoint served by the
same server in the same run. After every run the ledger is reconciled. Writes bench/RESULTS.md.

    make bench                      # or: .venv/bin/python bench/load.py --seconds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import common
from common import OUT, ROOT, World

CONNECTIONS = 16
ENDPOINTS = ["deduct", "debit", "remove", "get"]
LABELS = {
    "deduct": "POST /deduct-points-by-address",
    "debit": "POST /api/balances/debit",
    "remove": "PUT /api/stamp/v1/remove",
    "get": "GET /get-points-by-address",
    "noop": "GET /bench/noop",
}


def provision(customers: int) -> World:
    """Customers with enough money, points and stamps that no request of a run is refused."""
    return common.provision(
        "Bench",
        customers,
        max_stamps=10000,
        balance=10**9,
        points=10**9,
        stamps=10000,
    )


# --- request generation ---------------------------------------------------------------------


def build_requests(world: World, endpoint: str, scenario: str, count: int, run: str) -> list[str]:
    from uuid6 import uuid7

    from partners import signing

    rng = random.Random(f"{run}-{endpoint}-{scenario}")
    lines: list[str] = []
    originals: list[tuple] = []

    def pick(i: int) -> int:
        return 0 if scenario == "hot" else rng.randrange(len(world.customers))

    def signed(method: str, path: str, body: dict | None, query: str = ""):
        """A Points API request; the signature covers the path without its query string."""
        request_id = str(uuid7())
        text = json.dumps(body, separators=(",", ":")) if body is not None else ""
        canonical = signing.canonical_json(body) if body is not None else ""
        headers = {
            "X-API-KEY": world.hmac_key,
            "X-API-REQUEST": request_id,
            "X-API-SIGNATURE": signing.sign(world.hmac_secret, method, path, request_id, canonical),
            "Content-Type": "application/json",
        }
        return method, path + query, headers, text

    def keyed(endpoint: str, c: int, key: str):
        """A Balance or Stamp API request, with an Idempotency-Key in the dup10 scenario."""
        if endpoint == "debit":
            method, path, scheme = "POST", "/api/balances/debit", "Token"
            body = {
                "user": world.customers[c].email,
                "amount": 1,
                "merchant": world.merchant_id,
                "store": world.store_ids[0],
            }
        else:
            method, path, scheme = "PUT", "/api/stamp/v1/remove", "APIKey"
            body = {"stampIdx": world.stamps[c]}
        headers = {"Authorization": f"{scheme} {world.api_key}", "Content-Type": "application/json"}
        if scenario == "dup10":
            headers["Idempotency-Key"] = key
        return method, path, headers, json.dumps(body, separators=(",", ":"))

    for i in range(count):
        duplicate = scenario == "dup10" and originals and rng.random() < 0.10
        if duplicate:
            original = rng.choice(originals)
        c = pick(i)
        customer = world.customers[c]
        if endpoint == "deduct":
            body = (
                original
                if duplicate
                else {
                    "address": customer.wallet,
                    "deductPoints": 1,
                    "yggRedemptionId": f"{run}-{scenario}-{i}",
                }
            )
            request = signed("POST", "/deduct-points-by-address", body)
            if not duplicate:
                originals.append(body)
        elif endpoint == "get":
            if duplicate:
                request = original  # the same X-API-REQUEST again: a replay
            else:
                request = signed(
                    "GET", "/get-points-by-address", None, f"?address={customer.wallet}"
                )
                originals.append(request)
        elif endpoint in ("debit", "remove"):
            if duplicate:
                request = original  # the same Idempotency-Key again: a replay
            else:
                request = keyed(endpoint, c, f"{run}-{endpoint}-{i}")
                originals.append(request)
        else:
            raise ValueError(endpoint)
        method, path, headers, text = request
        joined = "\x1f".join(f"{k}: {v}" for k, v in headers.items())
        lines.append(f"{method}\t{path}\t{joined}\t{text}")
    return lines


# --- running --------------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    server_cpu_ms: float = 0.0  # per request
    postgres_cpu_ms: float = 0.0


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(url: str, lines: list[str], seconds: int, name: str) -> Result:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.requests"
    path.write_text("\n".join(lines) + "\n")
    threads = 2
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "replay.lua"),
            url,
            "--",
            str(path),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (OUT / f"{name}.wrk.txt").write_text(out)
    path.unlink()
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    if requests > len(lines):
        raise SystemExit(f"{name}: wrk sent {requests} requests but only {len(lines)} were built")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Result(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        requests=requests,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(x) for x in errors.groups()) if errors else 0,
    )


TICK = os.sysconf("SC_CLK_TCK")
NOTES_MARKER = "<!-- bench/load.py keeps everything below this line -->"


def cpu_seconds(server_session: int) -> tuple[float, float]:
    """CPU seconds used so far by the server's session (granian and its workers) and by every
    PostgreSQL process (backends, WAL writer, checkpointer), from /proc."""
    server = postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        if int(fields[3]) == server_session:  # the session id
            server += used
        elif comm.startswith("postgres"):
            postgres += used
    return server, postgres


def start_server(port: int, workers: int, threads: int, pool: bool = True) -> subprocess.Popen:
    server = common.start_server(
        port,
        "server.log",
        WEB_CONCURRENCY=str(workers),
        SERVER_THREADS=str(threads),
        DATABASE_POOL="1" if pool else "0",
        DATABASE_CONN_MAX_AGE="0" if pool else "600",
        DATABASE_POOL_MAX_SIZE=str(max(threads, 2)),
        DATABASE_POOL_MIN_SIZE=str(max(threads, 1)),
    )
    for _ in range(50):  # warm every worker's connection pool
        urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/noop", timeout=5).read()
    return server


def reconcile_ok() -> bool:
    from ledger import reconcile

    violations, _ = reconcile.run()
    for violation in violations[:20]:
        print("VIOLATION", violation)
    return not violations


def machine() -> dict:
    def first(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": f"{int(memory) // 1024 // 1024} GiB",
        "postgres": first(["psql", "--version"]),
        "python": platform.python_version(),
        "wrk": first(["wrk", "--version"]).splitlines()[0] if first(["wrk", "--version"]) else "?",
        "commit": common.commit(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 4)))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8811)
    parser.add_argument("--scenarios", default="spread,hot,dup10")
    parser.add_argument(
        "--no-pool",
        action="store_true",
        help="persistent connections (CONN_MAX_AGE) instead of psycopg's pool",
    )
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per endpoint; the median run is reported"
    )
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)

    common.configure(
        os.environ.get("BENCH_DB_NAME", "loyalty_bench"),
        REDIS_URL="redis://127.0.0.1:6379/15",
        BENCH_NOOP_ENDPOINT="1",
        **common.UNTHROTTLED,
    )
    started = time.monotonic()
    common.create_database()
    world = provision(args.customers)
    print(f"provisioned {args.customers} customers in {time.monotonic() - started:.1f}s")
    server = start_server(args.port, args.workers, args.threads, pool=not args.no_pool)
    base = f"http://127.0.0.1:{args.port}"
    rows = []
    try:
        for scenario in args.scenarios.split(","):
            for endpoint in args.endpoints.split(","):
                runs = []
                for attempt in range(args.repeat):
                    per_second = 6000
                    noop = wrk(
                        base,
                        ["GET\t/bench/noop\t\t"] * (args.seconds * per_second * 2),
                        args.seconds,
                        f"{scenario}-{endpoint}-noop",
                    )
                    lines = build_requests(
                        world,
                        endpoint,
                        scenario,
                        args.seconds * per_second,
                        run=f"{int(time.time())}-{attempt}",
                    )
                    before = cpu_seconds(server.pid)
                    result = wrk(base, lines, args.seconds, f"{scenario}-{endpoint}")
                    after = cpu_seconds(server.pid)
                    result.server_cpu_ms = (after[0] - before[0]) * 1000 / result.requests
                    result.postgres_cpu_ms = (after[1] - before[1]) * 1000 / result.requests
                    ok = reconcile_ok()
                    runs.append((result, noop, ok))
                    print(
                        f"{scenario:7} {endpoint:7} {result.rps:8.1f} rps  p50 "
                        f"{result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  non-2xx "
                        f"{result.non_2xx:5}  cpu {result.server_cpu_ms:.2f}"
                        f"+{result.postgres_cpu_ms:.2f} ms"
                        f"  noop {noop.rps:8.1f} rps  ratio "
                        f"{result.rps / noop.rps:.2f}  reconcile {'ok' if ok else 'FAILED'}",
                        flush=True,
                    )
                # On a shared machine runs differ; the table shows the median run by ratio.
                runs.sort(key=lambda r: r[0].rps / r[1].rps)
                result, noop, _ = runs[len(runs) // 2]
                ratios = [r.rps / n.rps for r, n, _ in runs]
                ok = all(run[2] for run in runs)
                rows.append((scenario, endpoint, result, noop, ok, (min(ratios), max(ratios))))
    finally:
        common.stop_server(server)
    write_results(Path(args.results), args, rows)
    if not all(row[4] for row in rows):
        raise SystemExit("reconcile failed after a run")


def write_results(path: Path, args, rows) -> None:
    info = machine()
    by = {(s, e): (r, n) for s, e, r, n, _, _ in rows}
    lines = [
        "# Load benchmark results",
        "",
        f"Run on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC at commit {info['commit']}.",
        f"Machine: {info['cpu']}, {info['memory']}; {info['postgres']}; Python {info['python']};"
        f" {info['wrk']}. The server, PostgreSQL, Redis and wrk share the machine.",
        "",
        f"Command: `.venv/bin/python bench/load.py --seconds {args.seconds} --customers "
        f"{args.customers} --workers {args.workers} --threads {args.threads} --repeat "
        f"{args.repeat} --scenarios {args.scenarios} --endpoints {args.endpoints}` "
        "(`make bench` runs every scenario and endpoint once).",
        f"Server: `make serve` (granian, {args.workers} workers x {args.threads} thread(s), "
        "DEBUG off, JSON access log, psycopg pool, Redis cache). wrk: 2 threads, "
        f"{CONNECTIONS} connections, {args.seconds} s per run, every request pre-built and sent "
        "once (fresh UUIDv7 and HMAC for the Points API). Each endpoint runs right after a "
        "no-op DRF endpoint on the same server; the ratio is the figure that survives a noisy "
        "machine. `reconcile` ran after every run.",
        "",
        "Scenarios: **spread** (random customer of "
        f"{args.customers}), **hot** (every request on one customer / one stamp), **dup10** "
        "(spread, a tenth of the requests repeat an earlier one: same redemption id for "
        "deduct, same Idempotency-Key for debit and remove, same X-API-REQUEST for get; the "
        "expected refusals are the non-2xx column).",
        "",
        f"Each row is the median of {args.repeat} run(s) by ratio; the last column gives the "
        "lowest and highest ratio of those runs.",
        "",
        "Server CPU and PostgreSQL CPU are per request, read from /proc before and after the "
        "run: the server's whole session (granian and its workers) and every PostgreSQL "
        "process.",
        "",
        "| scenario | endpoint | req/s | p50 ms | p99 ms | non-2xx | server CPU ms | "
        "PostgreSQL CPU ms | no-op req/s | ratio | reconcile | ratio range |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for scenario, endpoint, result, noop, ok, (low, high) in rows:
        lines.append(
            f"| {scenario} | `{LABELS[endpoint]}` | {result.rps:.0f} | {result.p50_ms:.1f} | "
            f"{result.p99_ms:.1f} | {result.non_2xx} | {result.server_cpu_ms:.2f} | "
            f"{result.postgres_cpu_ms:.2f} | {noop.rps:.0f} | "
            f"{result.rps / noop.rps:.2f} | {'ok' if ok else 'FAILED'} | {low:.2f}-{high:.2f} |"
        )
    if ("spread", "deduct") in by:
        spread, noop = by[("spread", "deduct")]
        lines += ["", "## Targets (deduct, 16 connections)", ""]
        lines.append(
            f"- throughput >= 0.40 of no-op: **{spread.rps / noop.rps:.2f}** "
            f"({'met' if spread.rps / noop.rps >= 0.40 else 'MISSED'})"
        )
        lines.append(
            f"- p99 < 60 ms: **{spread.p99_ms:.1f} ms** "
            f"({'met' if spread.p99_ms < 60 else 'MISSED'})"
        )
        if ("hot", "deduct") in by:
            hot = by[("hot", "deduct")][0]
            lines.append(
                f"- hot >= 0.5 x spread: **{hot.rps / spread.rps:.2f}** "
                f"({'met' if hot.rps / spread.rps >= 0.5 else 'MISSED'})"
            )
    # The sections below the marker (other runs, written by people) survive a new run.
    kept = ""
    if path.exists() and NOTES_MARKER in path.read_text():
        kept = path.read_text().split(NOTES_MARKER, 1)[1]
    path.write_text("\n".join(lines) + "\n\n" + NOTES_MARKER + kept)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
