"""`make serve`'s gunicorn settings, with a real gunicorn: a streamed response that lasts
longer than the worker timeout (a large audit-log export) is delivered whole."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_stream_longer_than_the_worker_timeout_is_not_cut(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_TIMEOUT": "2",  # gthread tells the arbiter it lives about every second
        "SLOW_APP_SECONDS": "6",
    }
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "tests.serving.slow_app",
            "--config",
            "python:loyalty.gunicorn_conf",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as response:
            body = response.read()
        assert time.monotonic() - started >= 6  # three times the worker timeout
        assert body.endswith(b"done\n"), (tmp_path / "gunicorn.log").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "WORKER TIMEOUT" not in (tmp_path / "gunicorn.log").read_text()
