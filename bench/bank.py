"""Bank test: many clients, a random mix of every money-moving call, against `make serve`,
while the server's workers are SIGKILLed and PostgreSQL restarts. Then the books must balance.

Every attempt carries a unique X-Request-ID, which the server writes on every history row
the attempt produces, so each logical operation can be matched to exactly the rows it made:

- an acknowledged success has exactly one creating row among its attempts' request ids,
  and exactly one event of its type (events carry the request id too),
- a refusal left no row and no event at all,
- an operation whose outcome stayed unknown (the connection died on every attempt) made
  at most one,
- and `reconcile` passes (no balance below zero, every cached value equal to its ledger).

One script on purpose (a little over 400 lines): the clients, the chaos and the audit of the
books are read together; the shared set-up lives in bench/common.py.

Clients retry a failed attempt with the same Idempotency-Key (and, for deductions, the same
redemption id), as a careful integrator would.

    make bank-test                    # 60 s;  BANK_SECONDS=30 make bank-test for CI
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

import common
from common import World


@dataclass
class Operation:
    kind: str
    attempts: list[str] = field(default_factory=list)  # X-Request-IDs
    outcome: str = "error"  # success | refused | error
    detail: dict = field(default_factory=dict)


class Client:
    def __init__(self, base: str, world: World, rng: random.Random) -> None:
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
                        "X-API-KEY": self.world.hmac_key,
                        "X-API-REQUEST": api_request,
                        "X-API-SIGNATURE": signing.sign(
                            self.world.hmac_secret,
                            method,
                            path.split("?")[0],
                            api_request,
                            canonical,
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

    def _customer(self) -> common.Customer:
        return self.rng.choice(self.world.customers)

    def _balance(self, op: Operation, path: str) -> Operation:
        customer = self._customer()
        body = {
            "user": customer.email,
            "amount": self.rng.randint(1, 400),
            "merchant": self.world.merchant_id,
            "store": self.world.store_ids[0],
        }
        headers = {
            "Authorization": f"Token {self.world.api_key}",
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
            "Authorization": f"Token {self.world.api_key}",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        result = self.send(op, "POST", "/api/balances/cancel", {"id": update}, headers)
        if result is None:
            return op
        status, payload = result
        op.outcome = "success" if status == 200 else "refused"
        op.detail = {"update": update, "code": payload.get("error_code")}
        return op

    def _points(self, op: Operation, path: str, body: dict) -> tuple[int, dict] | None:
        """A signed Points API POST, retried with the same Idempotency-Key."""
        return self.send(op, "POST", path, body, {"Idempotency-Key": uuid.uuid4().hex}, sign=True)

    def deduct(self, op):
        customer = self._customer()
        if self.redemptions and self.rng.random() < 0.2:
            redemption = self.rng.choice(self.redemptions)  # a duplicate on purpose
        else:
            redemption = uuid.uuid4().hex
            self.redemptions.append(redemption)
        body = {
            "address": customer.wallet,
            "deductPoints": self.rng.randint(1, 300),
            "yggRedemptionId": redemption,
        }
        result = self._points(op, "/deduct-points-by-address", body)
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
        result = self._points(op, "/revert-deduct-points", body)
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
        stamp = self.rng.choice(self.world.stamps)
        headers = {
            "Authorization": f"APIKey {self.world.api_key}",
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


def provision(customers: int) -> World:
    """A small world, so that clients meet on the same customers and stamps: the balances,
    points and stamps run out, and refusals are part of the mix."""
    common.create_database()
    return common.provision("Bank", customers, max_stamps=20, balance=1000, points=2000, stamps=10)


def start_server(port: int, workers: int) -> subprocess.Popen:
    return common.start_server(
        port, "bank-server.log", WEB_CONCURRENCY=str(workers), ACCESS_LOG_LEVEL="WARNING"
    )


def workers_of(server: subprocess.Popen) -> list[int]:
    """The worker pids of the HTTP server that `make serve` execs: the server's master is
    the child of `make`, its workers are the master's children (gunicorn's or granian's),
    apart from the resource tracker multiprocessing may start beside them."""
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True, check=True
    ).stdout
    rows = [
        (int(p), int(pp), args)
        for p, pp, args in (line.split(None, 2) for line in out.splitlines())
    ]
    masters = {p for p, pp, _args in rows if pp == server.pid}
    return [p for p, pp, args in rows if pp in masters and "resource_tracker" not in args]


def chaos(
    server: subprocess.Popen, seconds: float, restart_db: bool, log: list[str], killed: list[int]
) -> None:
    time.sleep(seconds / 3)
    victims = workers_of(server)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    killed.extend(victims)
    log.append(f"t={seconds / 3:.0f}s SIGKILL {len(victims)} server workers {victims}")
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
    "cancel": ("ledger.BalanceUpdate", "~", "balance_update_cancel"),
    "deduct": ("ledger.PointTransaction", "+", "point_deduct"),
    "revert": ("ledger.PointTransaction", "+", "point_deduction_revert"),
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

    common.configure(
        os.environ.get("BANK_DB_NAME", "loyalty_bank"),
        REDIS_URL="redis://127.0.0.1:6379/14",
        **common.UNTHROTTLED,
    )
    world = provision(args.customers)
    server = start_server(args.port, args.workers)
    events: list[str] = []
    killed: list[int] = []
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
            target=chaos, args=(server, args.seconds, not args.no_db_restart, events, killed)
        )
        for thread in [*threads, chaos_thread]:
            thread.start()
        for thread in [*threads, chaos_thread]:
            thread.join()
        common.wait_healthy(args.port, 60, common.OUT / "bank-server.log")
    finally:
        common.stop_server(server)

    from django.db import connection

    connection.close()  # PostgreSQL may have restarted under this process's connection
    problems = verify(operations)
    if not killed:
        problems.append("chaos found no server workers to kill: the test proved nothing")
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
