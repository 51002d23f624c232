"""In-process profile of the partner endpoints: the same signed requests as `make bench`, sent
through Django's WSGI handler (no network, no HTTP server), one at a time, on PostgreSQL with the
production settings of `make serve`. Prints, per endpoint, the mean time per request, the SQL
statements per request, the Python process's own CPU time per request (the rest is
PostgreSQL, Redis and waiting), and where the time goes (pyinstrument), so a change can be measured
before and after without the noise of a shared machine.

    make profile                    # or: .venv/bin/python bench/profile.py --requests 300
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import common
import load

ENDPOINTS = ["noop", *load.ENDPOINTS]


def wsgi_request(line: str) -> dict:
    method, target, joined, body = line.split("\t", 3)
    path, _, query = target.partition("?")
    data = body.encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "CONTENT_LENGTH": str(len(data)),
    }
    for header in filter(None, joined.split("\x1f")):
        name, _, value = header.partition(": ")
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        else:
            environ[f"HTTP_{key}"] = value
    return environ


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--profile", action="store_true", help="print pyinstrument's tree too")
    parser.add_argument("--html", help="write pyinstrument's HTML report to this directory")
    args = parser.parse_args()

    common.configure(
        os.environ.get("PROFILE_DB_NAME", "loyalty_profile"),
        REDIS_URL="redis://127.0.0.1:6379/15",
        BENCH_NOOP_ENDPOINT="1",
        ALLOWED_HOSTS="127.0.0.1",  # as `make serve` runs
        SECURE_SSL_REDIRECT="0",
        DATABASE_POOL="1",
        **common.UNTHROTTLED,
    )
    common.create_database()
    world = load.provision(args.customers)

    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    application = get_wsgi_application()

    def call(environ: dict) -> int:
        status: list[str] = []
        body = application(environ, lambda s, h, *_: status.append(s))
        b"".join(body)
        body.close()
        return int(status[0].split()[0])

    print(f"{'endpoint':8} {'ms/request':>10} {'CPU ms':>10} {'statements':>10}")
    if args.profile or args.html:
        print("(times include pyinstrument's overhead)")
    for endpoint in args.endpoints.split(","):
        if endpoint == "noop":
            lines = ["GET\t/bench/noop\t\t"] * (args.requests + 20)
        else:
            lines = load.build_requests(
                world, endpoint, "spread", args.requests + 20, run=f"profile-{time.time()}"
            )
        environs = [wsgi_request(line) for line in lines]
        for environ in environs[:20]:  # warm caches, connections, imports
            assert call(environ) < 300, environ
        with CaptureQueriesContext(connection) as queries:
            call(environs[20])
        statements = len(queries)
        profiler = Profiler(interval=0.0005)
        started, cpu_started = time.perf_counter(), time.process_time()
        if args.profile or args.html:  # the profiler's overhead stays out of the timing
            profiler.start()
        for environ in environs[21:]:
            status = call(environ)
            assert status < 300, (endpoint, status)
        if args.profile or args.html:
            profiler.stop()
        count = len(environs) - 21
        per_request = (time.perf_counter() - started) * 1000 / count
        cpu = (time.process_time() - cpu_started) * 1000 / count
        print(f"{endpoint:8} {per_request:10.2f} {cpu:10.2f} {statements:10}", flush=True)
        if args.profile:
            every_frame = bool(os.environ.get("PROFILE_ALL"))
            print(profiler.output_text(unicode=True, color=False, show_all=every_frame))
        if args.html:
            Path(args.html).mkdir(parents=True, exist_ok=True)
            (Path(args.html) / f"{endpoint}.html").write_text(profiler.output_html())


if __name__ == "__main__":
    main()
