"""What the benchmarks share: their environment, a database of their own, the world they
provision (merchant, stores, stamp card, partner, customers) and the `make serve` they start.

Each benchmark calls `configure` first (before Django is set up), then `create_database`.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
ADMIN_URL = os.environ.get(
    "BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
# A benchmark's partner requests must not be throttled: they measure the server, not a limit.
UNTHROTTLED = {
    "PARTNER_THROTTLE_RATE": "100000000/min",
    "STAMP_REMOVALS_PER_STAMP_PER_DAY": "100000000",
}


def configure(db_name: str, **defaults: str) -> None:
    """This process's environment, inherited by the servers and commands it starts: its own
    database `db_name`, production settings (DEBUG off), and `defaults` for the variables the
    caller has not set (REDIS_URL among them: BENCH_REDIS_URL, else none)."""
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db_name}",
        DEBUG="0",
        DJANGO_SETTINGS_MODULE="loyalty.settings",
    )
    if os.environ.get("BENCH_REDIS_URL"):
        os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def create_database() -> None:
    """Drop and create the configured database, migrate it and set Django up in-process."""
    import django
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


@dataclass
class Customer:
    id: int
    email: str
    wallet: str


@dataclass
class World:
    merchant_id: int
    store_ids: list[int]
    card_id: int
    partner_id: int
    api_key: str
    hmac_key: str
    hmac_secret: str
    customers: list[Customer]
    stamps: list[int]  # one per customer, in the same order


def provision(
    name: str,
    customers: int,
    *,
    stores: int = 1,
    max_stamps: int = 10,
    balance: int = 0,
    points: int = 0,
    stamps: int = 0,
    hmac_secret: str | None = None,
) -> World:
    """A merchant with `stores` stores and a stamp card, a partner for it, and `customers`
    customers with a `balance`, `points` and a stamp card holding `stamps`: everything
    through the services, as production makes it."""
    from accounts.services import customer_create, merchant_create, store_create
    from ledger import services
    from loyalty.audit import Channel
    from partners.services import partner_create

    actor, channel = None, Channel.COMMAND
    merchant = merchant_create(actor=actor, channel=channel, name=f"{name} merchant")
    store_list = [
        store_create(actor=actor, channel=channel, merchant=merchant, name=f"{name} store {i}")
        for i in range(stores)
    ]
    card = services.stamp_card_create(
        actor=actor, channel=channel, merchant=merchant, name=f"{name} card", max_stamps=max_stamps
    )
    partner, credentials = partner_create(
        actor=actor,
        channel=channel,
        name=f"{name} partner",
        merchants=[merchant],
        hmac_secret=hmac_secret,
    )
    world = World(
        merchant_id=merchant.pk,
        store_ids=[store.pk for store in store_list],
        card_id=card.pk,
        partner_id=partner.pk,
        api_key=credentials.api_key,
        hmac_key=credentials.hmac_key,
        hmac_secret=credentials.hmac_secret,
        customers=[],
        stamps=[],
    )
    today = dt.date.today()
    slug = name.lower().replace(" ", "-")
    for i in range(customers):
        customer = customer_create(
            actor=actor,
            channel=channel,
            merchant=merchant,
            email=f"c{i}@{slug}.example",
            member_id=f"M{i}",
            wallet_address=f"0x{i + 1:040x}",
        )
        if balance:
            services.balance_credit(
                actor=actor, channel=channel, customer=customer, store=store_list[0], amount=balance
            )
        if points:
            services.points_credit(actor=actor, channel=channel, customer=customer, points=points)
        stamp = services.stamp_create(
            actor=actor,
            channel=channel,
            card=card,
            customer=customer,
            start_date=today - dt.timedelta(days=1),
            end_date=today + dt.timedelta(days=30),
        )
        if stamps:
            services.stamp_update(
                actor=actor, channel=channel, stamp=stamp, count=stamps, reason="bench opening"
            )
        world.customers.append(Customer(customer.pk, customer.email, customer.wallet_address))
        world.stamps.append(stamp.pk)
    return world


def start_server(port: int, log_name: str, **env: str) -> subprocess.Popen:
    """`make serve` on `port` with this process's environment and `env`, in a session of its
    own (`stop_server` ends the whole group), logging to bench/out/`log_name`; returns once
    /healthz answers."""
    OUT.mkdir(exist_ok=True)
    log = OUT / log_name
    server = subprocess.Popen(
        ["make", "--no-print-directory", "serve"],
        cwd=ROOT,
        env={**os.environ, "PORT": str(port), **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_healthy(port, 120, log)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_healthy(port: int, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the server is not healthy; see {log.relative_to(ROOT)}")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def commit() -> str:
    """The short hash of the checked-out commit, for the results files."""
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
