"""A WSGI app that streams its answer slowly: a stand-in for a long audit-log CSV export."""

import os
import time


def application(environ, start_response):
    seconds = float(os.environ.get("SLOW_APP_SECONDS", "3"))
    start_response("200 OK", [("Content-Type", "text/csv")])

    def rows():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            yield b"row\n"
            time.sleep(0.1)
        yield b"done\n"

    return rows()
