"""`make serve`'s server configuration around a slow streaming app: a streamed response
that lasts three times the server's shortest timeout (a large audit-log export) is
delivered whole, and no worker is lost on the way."""

import time
import urllib.request

from tests.serving.server import Server


def test_a_stream_longer_than_the_server_timeouts_is_not_cut(tmp_path):
    server = Server(
        tmp_path / "server.log",
        workers=1,
        app="tests.serving.slow_app:application",
        env={"SERVER_HEADER_TIMEOUT": "2", "SLOW_APP_SECONDS": "6"},
    )
    try:
        started = time.monotonic()
        url = f"http://127.0.0.1:{server.port}/"
        with urllib.request.urlopen(url, timeout=20) as response:
            body = response.read()
        assert time.monotonic() - started >= 6  # three times the header timeout
        assert body.endswith(b"done\n"), server.log.read_text()
    finally:
        server.stop()
    log = server.log.read_text()
    assert "Unexpected exit" not in log, log
