"""Webhook delivery benchmark: webhooks/s that ONE worker delivers to a local receiver.

Makes a fresh PostgreSQL database (BENCH_DB_NAME, default loyalty_webhooks_bench), writes
EVENTS events over CUSTOMERS customers, starts a receiver process on 127.0.0.1 (a threaded
http.server answering 204), then times `worker.run(burst=True)` in this process: dispatch,
claim, sign, POST, record, until every delivery succeeded. The receiver checks nothing (its
cost is not the worker's); the signature tests use the standardwebhooks package.

Usage: .venv/bin/python bench/webhooks.py [--events 5000] [--customers 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/profile.py would shadow the standard library's profile module (cProfile needs it).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
DB = os.environ.get("BENCH_DB_NAME", "loyalty_webhooks_bench")
SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
os.environ["WEBHOOK_ALLOW_PRIVATE_URLS"] = "1"
os.environ["NATS_URL"] = ""
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
ThreadingHTTPServer.request_queue_size = 256
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=1000)
    args = parser.parse_args()

    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Customer, Merchant
    from ledger.models import Event
    from ledger.models.webhooks import WebhookDelivery
    from ledger.webhooks import delivery, services, worker

    call_command("migrate", verbosity=0)
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE)
    try:
        port = int(receiver.stdout.readline())
        merchant = Merchant.objects.bulk_create([Merchant(name="Bench")])[0]
        customers = Customer.objects.bulk_create(
            [
                Customer(merchant=merchant, email=f"c{i}@example.com", member_id=f"M{i}")
                for i in range(args.customers)
            ]
        )
        now = timezone.now()
        Event.objects.bulk_create(
            [
                Event(
                    event_id=f"evt_{uuid.uuid4().hex}",
                    type="points.credited",
                    created=now,
                    merchant=merchant,
                    customer=customers[i % args.customers],
                    customer_sequence=i // args.customers + 1,
                    actor_type="system",
                    actor_name="bench",
                    channel="command",
                    data={"point_transaction": {"id": i, "points": 10}, "points": 10 * i},
                )
                for i in range(args.events)
            ]
        )
        services.endpoint_create(
            merchant_id=merchant.pk, url=f"http://127.0.0.1:{port}/hook", event_types=["*"]
        )
        # Fan-out first (the dispatcher's share), then the deliveries on a table whose
        # statistics are current, as autovacuum keeps those of a live deliveries table (a
        # table analyzed while empty makes PostgreSQL sort every pending row per claim).
        started = time.perf_counter()
        while WebhookDelivery.objects.count() < args.events:
            # Events become final once every older transaction on the server has ended.
            if not delivery.dispatch():
                time.sleep(0.01)
        fanned = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE ledger_webhookdelivery")
        started = time.perf_counter()
        cpu = time.process_time()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            with cProfile.Profile() as profiler:
                worker.run(burst=True)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        else:
            worker.run(burst=True)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        done = WebhookDelivery.objects.filter(status="succeeded").count()
        assert done == args.events, f"{done} of {args.events} delivered"
        print(
            f"dispatch: {args.events} events fanned out in {fanned:.2f} s "
            f"({args.events / fanned:.0f} events/s)\n"
            f"delivery: {args.events} webhooks ({args.customers} customers, batch "
            f"{settings.WEBHOOK_BATCH}, {settings.WEBHOOK_THREADS} threads) in {seconds:.2f} s: "
            f"{args.events / seconds:.0f} webhooks/s; worker CPU {cpu:.2f} s "
            f"({cpu / args.events * 1000:.1f} ms per webhook)"
        )
    finally:
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    main()
