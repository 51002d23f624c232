"""Starting the real server the way `make serve` does, on a free loopback port."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DJANGO = "loyalty.wsgi:application"


def serve_command(app: str = DJANGO) -> list[str]:
    """The command `make serve` runs (its variables come from the environment), or the same
    server configuration around another WSGI application."""
    if app == DJANGO:
        return [sys.executable, "-m", "loyalty.serve"]
    return [sys.executable, "-c", f"from loyalty.serve import server; server({app!r}).serve()"]


def server_database_url() -> str:
    """The test database, for a server in another process (its rows must be committed)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the real server needs the PostgreSQL test database")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Server:
    def __init__(self, log: Path, *, workers: int = 2, app: str = DJANGO, env=None):
        self.port = free_port()
        self.log = log
        environment = {
            **os.environ,
            # What `make serve` exports.
            "DEBUG": "0",
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_POOL": "1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            **(env or {}),
        }
        self.process = subprocess.Popen(
            serve_command(app),
            cwd=ROOT,
            env=environment,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_ready(app == DJANGO)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, django: bool) -> None:
        """Listening; for Django, also answering `/healthz` several times in a row, so that
        each worker has most likely served its first (slow, lazily loading) request."""
        answered, deadline = 0, time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()}")
            try:
                if not django:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/healthz", headers={"Connection": "close"})
                answered += connection.getresponse().status == 200
                connection.close()
                if answered >= 8:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the server is not ready: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
