"""Run the background worker: webhook deliveries and the event bus, until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from ledger.webhooks import worker


class Command(BaseCommand):
    help = (
        "Deliver webhooks (and publish events to NATS when NATS_URL is set) until stopped. "
        "Any number of workers may run: they share the work with FOR UPDATE SKIP LOCKED."
    )

    def add_arguments(self, parser):
        parser.add_argument("--burst", action="store_true", help="Do what is due now, then exit.")

    def handle(self, *args, **options):
        stop = threading.Event()

        def on_signal(signum, frame):
            # Finish the round in progress (its deliveries are recorded), then exit.
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        attempted = worker.run(burst=options["burst"], stop=stop)
        if options["verbosity"] >= 1:
            self.stdout.write(f"worker stopped: {attempted} delivery attempts")
