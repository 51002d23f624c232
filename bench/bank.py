"""Bank test: many clients, a random mix of every money-moving call, against `make serve`,
while gunicorn workers are SIGKILLed and PostgreSQL restarts. Then the books must balance.

Every attempt carries a unique X-Request-ID, which the server writes on every history row
the attempt produces, so each logical operation can be matched to exactly the rows it made:

- an acknowledged success has exactly one creating row among its attempts' request ids,
  and exactly one event of its type (events carry the request id too),
- a refusal left no row and no event at all,
- an operation whose outcome stayed unknown (the connection died on every attempt) made
  at most one,
- and `reconcile` passes (no balance below zero, every cached value equal to its ledger).

Clients retry a failed attempt with the same Idempotency-Key (and, for deductions, the same
redemption id), as a careful integrator would.

    make bank-test                    # 60 s;  BANK_SECONDS=30 make bank-test for CI
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DB_NAME = os.environ.get("BANK_DB_NAME", "loyalty_bank")
ADMIN_URL = os.environ.get(
    "BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
HMAC_SECRET = "bank-hmac-secret"

os.environ.update(DATABASE_URL=DATABASE_URL, DEBUG="0", DJANGO_SETTINGS_MODULE="loyalty.settings")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
sys.path.insert(0, str(ROOT))


@dataclass
class Operation:
    kind: str
    attempts: list[str] = field(default_factory=list)  # X-Request-IDs
    outcome: str = "error"  # success | refused | error
    detail: dict = field(default_factory=dict)


class Client:
    def __init__(self, base: str, world: dict, rng: random.Random) -> None:
        self.base, self.world, self.rng = base, world, rng
        self.updates: list[int] = []  # balance updates this client saw succeed
        self.deductions: list[dict] = []
        self.redemptions: list[str] = []

    # --- transport ---------------------------------------------------------------------

    def send(
        self,
        op: Operation,
        method: str,
        path: str,
        body: dict | None,
        headers: dict,
        sign: bool = False,
    ) -> tuple[int, dict] | None:
        """Up to 4 attempts; a lost connection or a 5xx is retried with the same body and
        Idempotency-Key. Returns the last (status, body), or None when every attempt died."""
        from uuid6 import uuid7

        from partners import signing

        text = json.dumps(body) if body is not None else None
        for attempt in range(4):
            request_id = uuid.uuid4().hex
            op.attempts.append(request_id)
            all_headers = {
                "Content-Type": "application/json",
                "X-Request-ID": request_id,
                **headers,
            }
            if sign:
                api_request = str(uuid7())
                canonical = signing.canonical_json(body) if body is not None else ""
                all_headers.update(
                    {
                        "X-API-KEY": self.world["hmac_key"],
                        "X-API-REQUEST": api_request,
                        "X-API-SIGNATURE": signing.sign(
                            HMAC_SECRET, method, path.split("?")[0], api_request, canonical
                        ),
                    }
                )
            request = urllib.request.Request(
                self.base + path,
                data=text.encode() if text else None,
                method=method,
                headers=all_headers,
            )
            try:
                with urllib.request.urlopen(request, timeout=15) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    return error.code, json.loads(error.read() or b"{}")
            except (OSError, ValueError):
                pass
            time.sleep(0.2 * (attempt + 1))
        return None

    # --- operations --------------------------------------------------------------------

    def run_one(self) -> Operation:
        kind = self.rng.choices(
            ["credit", "debit", "cancel", "deduct", "revert", "remove", "add"],
            weights=[20, 20, 8, 25, 8, 10, 9],
        )[0]
        return getattr(self, kind)(Operation(kind))

    def _customer(self) -> dict:
        return self.rng.choice(self.world["customers"])

    def _balance(self, op: Operation, path: str) -> Operation:
        customer = self._customer()
        body = {
            "user": customer["email"],
            "amount": self.rng.randint(1, 400),
            "merchant": self.world["merchant"],
            "store": self.world["store"],
        }
        headers = {
            "Authorization": f"Token {self.world['api_key']}",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        result = self.send(op, "POST", path, body, headers)
        if result is None:
            return op
        status, payload = result
        if status == 200:
            op.outcome = "success"
            op.detail = {"update": payload["balance_update"]["id"], "amount": body["amount"]}
            self.updates.append(payload["balance_update"]["id"])
        else:
            op.outcome = "refused"
            op.detail = {"code": payload.get("error_code")}
        return op

    def credit(self, op):
        return self._balance(op, "/api/balances/credit")

    def debit(self, op):
        return self._balance(op, "/api/balances/debit")

    def cancel(self, op):
        if not self.updates:
            return self.credit(Operation("credit"))
        update = self.rng.choice(self.updates)
        headers = {
            "Authorization": f"Token {self.world['api_key']}",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        result = self.send(op, "POST", "/api/balances/cancel", {"id": update}, headers)
        if result is None:
            return op
        status, payload = result
        op.outcome = "success" if status == 200 else "refused"
        op.detail = {"update": update, "code": payload.get("error_code")}
        return op

    def deduct(self, op):
        customer = self._customer()
        if self.redemptions and self.rng.random() < 0.2:
            redemption = self.rng.choice(self.redemptions)  # a duplicate on purpose
        else:
            redemption = uuid.uuid4().hex
            self.redemptions.append(redemption)
        body = {
            "address": customer["wallet"],
            "deductPoints": self.rng.randint(1, 300),
            "yggRedemptionId": redemption,
        }
        result = self.send(
            op,
            "POST",
            "/deduct-points-by-address",
            body,
            {"Idempotency-Key": uuid.uuid4().hex},
            sign=True,
        )
        if result is None:
            return op
        status, payload = result
        op.detail = {"redemption": redemption, "code": payload.get("errorCode")}
        if status == 200:
            op.outcome = "success"
            op.detail["txn"] = payload["partnerTransactionId"]
            self.deductions.append(
                {**body, "partnerTransactionId": payload["partnerTransactionId"]}
            )
        else:
            op.outcome = "refused"
        return op

    def revert(self, op):
        if not self.deductions:
            return self.deduct(Operation("deduct"))
        original = self.rng.choice(self.deductions)
        body = {**original, "revertReason": "bank test"}
        result = self.send(
            op,
            "POST",
            "/revert-deduct-points",
            body,
            {"Idempotency-Key": uuid.uuid4().hex},
            sign=True,
        )
        if result is None:
            return op
        status, payload = result
        op.outcome = "success" if status == 200 else "refused"
        op.detail = {
            "txn": original["partnerTransactionId"],
            "code": payload.get("errorCode"),
            "revert": payload.get("partnerRevertId"),
        }
        return op

    def _stamp(self, op, path):
        stamp = self.rng.choice(self.world["stamps"])
        headers = {
            "Authorization": f"APIKey {self.world['api_key']}",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        result = self.send(op, "PUT", path, {"stampIdx": stamp}, headers)
        if result is None:
            return op
        status, payload = result
        op.outcome = "success" if status == 200 and payload.get("code") == 0 else "refused"
        op.detail = {"stamp": stamp, "code": payload.get("code")}
        return op

    def remove(self, op):
        return self._stamp(op, "/api/stamp/v1/remove")

    def add(self, op):
        return self._stamp(op, "/api/stamp/v1/add")


# --- set-up, chaos, verification ---------------------------------------------------------------


def provision(customers: int) -> dict:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    subprocess.run([sys.executable, "manage.py", "createcachetable"], cwd=ROOT, check=True)
    import django

    django.setup()
    from accounts.services import customer_create, merchant_create, store_create
    from ledger import services
    from loyalty.audit import Channel
    from partners.services import partner_create

    actor, channel = None, Channel.COMMAND
    merchant = merchant_create(actor=actor, channel=channel, name="Bank")
    store = store_create(actor=actor, channel=channel, merchant=merchant, name="Vault")
    card = services.stamp_card_create(
        actor=actor, channel=channel, merchant=merchant, name="Card", max_stamps=20
    )
    _partner, creds = partner_create(
        actor=actor,
        channel=channel,
        name="Bank partner",
        merchants=[merchant],
        hmac_secret=HMAC_SECRET,
    )
    world = {
        "merchant": merchant.pk,
        "store": store.pk,
        "api_key": creds.api_key,
        "hmac_key": creds.hmac_key,
        "customers": [],
        "stamps": [],
    }
    today = dt.date.today()
    for i in range(customers):
        customer = customer_create(
            actor=actor,
            channel=channel,
            merchant=merchant,
            email=f"b{i}@bank.example",
            wallet_address=f"0x{i + 1:040x}",
        )
        services.balance_credit(
            actor=actor, channel=channel, customer=customer, store=store, amount=1000
        )
        services.points_credit(actor=actor, channel=channel, customer=customer, points=2000)
        stamp = services.stamp_create(
            actor=actor,
            channel=channel,
            card=card,
            customer=customer,
            start_date=today - dt.timedelta(days=1),
            end_date=today + dt.timedelta(days=30),
        )
        services.stamp_update(actor=actor, channel=channel, stamp=stamp, count=10, reason="open")
        world["customers"].append({"email": customer.email, "wallet": customer.wallet_address})
        world["stamps"].append(stamp.pk)
    return world


def start_server(port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "PARTNER_THROTTLE_RATE": "100000000/min",
        "STAMP_REMOVALS_PER_STAMP_PER_DAY": "100000000",
        "ACCESS_LOG_LEVEL": "WARNING",
    }
    OUT.mkdir(exist_ok=True)
    log = (OUT / "bank-server.log").open("w")
    server = subprocess.Popen(
        ["make", "--no-print-directory", "serve"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_healthy(port, 120)
    return server


def wait_healthy(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the server is not healthy; see bench/out/bank-server.log")


def workers_of(server: subprocess.Popen) -> list[int]:
    """gunicorn's worker pids (grandchildren of `make serve`)."""
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(None, 2) for line in out.splitlines()]
    master = [int(p) for p, pp, args in rows if int(pp) == server.pid and "gunicorn" in args]
    return [int(p) for p, pp, args in rows if master and int(pp) == master[0]]


def chaos(server: subprocess.Popen, seconds: float, restart_db: bool, log: list[str]) -> None:
    time.sleep(seconds / 3)
    victims = workers_of(server)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    log.append(f"t={seconds / 3:.0f}s SIGKILL {len(victims)} gunicorn workers {victims}")
    time.sleep(seconds / 3)
    if restart_db:
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        started = time.monotonic()
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            capture_output=True,
        )
        log.append(
            f"t={2 * seconds / 3:.0f}s restarted PostgreSQL {version} "
            f"({time.monotonic() - started:.1f}s)"
        )


CREATING = {  # operation -> (history model, history_type, operation name) of its one new row
    "credit": ("ledger.BalanceUpdate", "+", "balance_credit"),
    "debit": ("ledger.BalanceUpdate", "+", "balance_debit"),
    "cancel": ("ledger.BalanceUpdate", "~", "balance_cancel"),
    "deduct": ("ledger.PointTransaction", "+", "points_deduct"),
    "revert": ("ledger.PointTransaction", "+", "points_revert"),
    "remove": ("ledger.Stamp", "~", "stamp_remove"),
    "add": ("ledger.Stamp", "~", "stamp_add"),
}
EVENT_TYPES = {  # operation -> the type of its one event
    "credit": "balance.credited",
    "debit": "balance.debited",
    "cancel": "balance.canceled",
    "deduct": "points.deducted",
    "revert": "points.reverted",
    "remove": "stamp.removed",
    "add": "stamp.added",
}


def verify(operations: list[Operation]) -> list[str]:
    from django.apps import apps

    from ledger import reconcile

    problems = [str(v) for v in reconcile.run()[0]]
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for label in {model for model, _, _ in CREATING.values()}:
        history = apps.get_model(label).history
        for request_id, history_type, operation in history.exclude(request_id="").values_list(
            "request_id", "history_type", "operation"
        ):
            rows[request_id][(label, history_type, operation)] += 1
    events: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for request_id, type_ in (
        apps.get_model("ledger.Event")
        .objects.exclude(request_id=None)
        .values_list("request_id", "type")
    ):
        events[request_id][type_] += 1
    for op in operations:
        emitted = sum(events[r][EVENT_TYPES[op.kind]] for r in op.attempts)
        if op.outcome == "success" and emitted != 1:
            problems.append(f"acknowledged {op.kind} emitted {emitted} events: {op.detail}")
        elif op.outcome == "refused" and any(events[r] for r in op.attempts):
            problems.append(f"refused {op.kind} emitted an event: {op.detail}")
        elif op.outcome == "error" and emitted > 1:
            problems.append(f"{op.kind} with unknown outcome emitted {emitted} events: {op.detail}")
        wanted = CREATING[op.kind]
        made = sum(rows[r][wanted] for r in op.attempts)
        if op.outcome == "success" and made != 1:
            problems.append(f"acknowledged {op.kind} made {made} rows: {op.detail}")
        elif op.outcome == "refused" and any(rows[r] for r in op.attempts):
            problems.append(f"refused {op.kind} left a trace: {op.detail}")
        elif op.outcome == "error" and made > 1:
            problems.append(f"{op.kind} with unknown outcome made {made} rows: {op.detail}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BANK_SECONDS", 60)))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8822)
    parser.add_argument("--no-db-restart", action="store_true")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()

    world = provision(args.customers)
    server = start_server(args.port, args.workers)
    events: list[str] = []
    operations: list[Operation] = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client_loop(i: int) -> None:
        client = Client(f"http://127.0.0.1:{args.port}", world, random.Random(args.seed + i))
        while time.monotonic() < deadline:
            op = client.run_one()
            with lock:
                operations.append(op)

    try:
        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(args.clients)]
        chaos_thread = threading.Thread(
            target=chaos, args=(server, args.seconds, not args.no_db_restart, events)
        )
        for thread in [*threads, chaos_thread]:
            thread.start()
        for thread in [*threads, chaos_thread]:
            thread.join()
        wait_healthy(args.port, 60)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    from django.db import connection

    connection.close()  # PostgreSQL may have restarted under this process's connection
    problems = verify(operations)
    outcomes = collections.Counter(op.outcome for op in operations)
    by_kind = collections.Counter((op.kind, op.outcome) for op in operations)
    attempts = sum(len(op.attempts) for op in operations)
    print(f"seed {args.seed}; {args.clients} clients for {args.seconds:.0f}s")
    for event in events:
        print("chaos:", event)
    print(
        f"operations {len(operations)} (attempts {attempts}): successes {outcomes['success']}, "
        f"refusals {outcomes['refused']}, errors {outcomes['error']}"
    )
    for kind in CREATING:
        print(
            f"  {kind:7} success {by_kind[(kind, 'success')]:5}  refused "
            f"{by_kind[(kind, 'refused')]:5}  error {by_kind[(kind, 'error')]:3}"
        )
    if problems:
        for problem in problems[:50]:
            print("PROBLEM", problem)
        raise SystemExit(f"bank test FAILED: {len(problems)} problems")
    print(
        "bank test OK: reconcile clean, every success in the ledger and in the events exactly "
        "once, every refusal without a trace"
    )


if __name__ == "__main__":
    main()
