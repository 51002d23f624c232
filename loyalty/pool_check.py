"""The pool's health check, paid only when a connection may have died unnoticed.

Django's CONN_HEALTH_CHECKS hands psycopg's pool `ConnectionPool.check_connection`: an empty
statement, one round trip to PostgreSQL, every time a request takes a connection (8.5% of a
worker's samples under load). A connection the pool handed out a moment ago was alive then;
the ones that may be dead are those nobody used for a while (PostgreSQL restarted, or a
backend was terminated, while they sat in the pool). So the check pings a connection only when
it was last handed out more than `idle_seconds` ago (or never, e.g. fresh from the pool's
start), and lets the others through untouched. A dead one fails the ping and the pool replaces
it before any request sees it, as before.

What it gives up: a connection that dies less than `idle_seconds` after it was last handed
out is not pinged, and the request that takes it fails once (the pool then discards it, as it
is returned broken). The time is taken when the connection is handed out rather than when it
comes back (a `reset=` callback would run on the pool's worker thread, a thread hand-off on
every return), so a connection is counted idle from the start of its last use: a long use
makes the next check more likely, never less.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from psycopg_pool import ConnectionPool

_HANDED_OUT_AT = "_loyalty_handed_out_at"


def ping_when_idle(idle_seconds: float) -> Callable:
    """A `check=` for psycopg's pool that pings only connections idle past `idle_seconds`."""

    def check(conn) -> None:
        now = time.monotonic()
        last = getattr(conn, _HANDED_OUT_AT, None)
        if last is None or now - last > idle_seconds:
            ConnectionPool.check_connection(conn)  # raises for a dead connection
        setattr(conn, _HANDED_OUT_AT, now)

    check.idle_seconds = idle_seconds
    return check
