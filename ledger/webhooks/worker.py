"""The background worker loop (`manage.py run_worker`): event bus, approval expiry, correction
batches, dispatch, deliveries."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

from ledger import approvals, batches
from ledger.models.webhooks import WorkerCursor
from ledger.webhooks import bus, delivery, feed

logger = logging.getLogger("ledger.webhooks")


def run(*, burst: bool = False, stop: threading.Event | None = None) -> int:
    """Loop until `stop` is set (or, with `burst`, until nothing is due); returns how many
    deliveries were attempted."""
    stop = stop or threading.Event()
    poll = float(getattr(settings, "WORKER_POLL_SECONDS", 1.0))
    publisher = bus.publisher()
    attempted = 0
    # A burst delivers every event committed before it started, also those whose
    # transaction is not "final" yet (an older transaction anywhere on the server is still
    # open): it waits for them rather than exit with them undelivered.
    target = feed.last_pk() if burst else 0
    with ThreadPoolExecutor(int(getattr(settings, "WEBHOOK_THREADS", 16))) as pool:
        try:
            while not stop.is_set():
                try:
                    done = publisher.publish_due() if publisher else 0
                    # Pending approvals past APPROVAL_TTL_SECONDS: `approval.expired` events.
                    done += approvals.expire_due()
                    # Correction batches: one chunk of applying rows, rejected ones settled.
                    done += batches.run_due()
                    done += delivery.dispatch()
                    sent = delivery.deliver_due(pool=pool)
                except Exception:
                    if burst:
                        raise
                    # The database or NATS is away: nothing was committed; try again later.
                    logger.exception("worker round failed; retrying")
                    close_old_connections()
                    stop.wait(poll)
                    continue
                attempted += sent
                if done + sent == 0:
                    if burst and not _behind(target, publisher is not None):
                        break
                    stop.wait(0.05 if burst else poll)
        finally:
            if publisher:
                publisher.close()
    return attempted


def _behind(target: int, publishing: bool) -> bool:
    """Whether a duty's cursor has not yet passed every event up to id `target`."""
    for name in ("webhooks", "nats") if publishing else ("webhooks",):
        cursor = WorkerCursor.objects.filter(name=name).first()
        txid, pk = (cursor.txid, cursor.event) if cursor else (0, 0)
        if feed.pending_until(txid, pk, target):
            return True
    return False
