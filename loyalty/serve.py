"""`make serve`'s HTTP server: granian serving loyalty.wsgi, configured from the environment.

granian reads each request's head asynchronously (in Rust), so a client trickling its
headers costs no Python thread; loyalty.request_body reads a body before Django runs, so a
client trickling its body costs one thread of SERVER_THREADS and no database connection.
There is no worker timeout that would cut a long streamed CSV export. `tests/serving/`
holds all of this against the real server.
"""

from __future__ import annotations

import os

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    # granian's own lines (start, stop, worker failures); Django writes the access lines.
    "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}


def server(target: str = "loyalty.wsgi:application") -> Granian:
    return Granian(
        target,
        interface=Interfaces.WSGI,
        address="0.0.0.0",  # noqa: S104 (all interfaces, as in a container)
        port=_int("PORT", 8000),
        workers=_int("WEB_CONCURRENCY", 4),
        blocking_threads=_int("SERVER_THREADS", 32),
        http=HTTPModes.http1,
        websockets=False,
        backlog=2048,
        http1_settings=HTTP1Settings(
            # A request head not complete in time is dropped (the default is 30 s).
            header_read_timeout=_int("SERVER_HEADER_TIMEOUT", 10) * 1000,
            keep_alive=True,
        ),
        log_dictconfig=None if os.environ.get("LOG_FORMAT") == "plain" else LOGGING,
        respawn_failed_workers=True,  # as gunicorn's arbiter did: a crashed worker comes back
        workers_kill_timeout=20,  # seconds for running requests to finish on shutdown
    )


if __name__ == "__main__":
    server().serve()
