"""Slow clients cannot starve the real server: with 50 connections trickling headers or a
body, `/healthz` still answers every probe within a second."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time

import pytest

from tests.serving.server import Server, server_database_url

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_CONNECTIONS = 50
PROBE_SECONDS = 10


def trickle(sockets, payloads, stop: threading.Event) -> None:
    """Send each socket one more piece of its never-finished request every second."""
    while not stop.wait(1):
        for sock, payload in zip(sockets, payloads, strict=True):
            with contextlib.suppress(OSError):  # the server may cut a slow client: allowed
                sock.sendall(payload)


def test_fifty_slow_connections_do_not_starve_healthz(tmp_path, partner):
    server = Server(tmp_path / "server.log", workers=2, env={"DATABASE_URL": server_database_url()})
    sockets, payloads = [], []
    stop = threading.Event()
    trickler = None
    try:
        for number in range(SLOW_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            if number % 2:  # headers, one line a second, never the blank line that ends them
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                payloads.append(b"X-Slow: 1\r\n")
            else:  # a complete head, then a body that never reaches its declared length
                sock.sendall(
                    b"POST /deduct-points-by-address HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 50000\r\n"
                    b"X-API-KEY: " + partner.credentials.hmac_key.encode() + b"\r\n"
                    b"X-API-REQUEST: 0190b0c8-0000-7000-8000-000000000000\r\n"
                    b"X-API-SIGNATURE: 0\r\n\r\n" + b'{"address": "'
                )
                payloads.append(b"x")
            sockets.append(sock)
        trickler = threading.Thread(target=trickle, args=(sockets, payloads, stop), daemon=True)
        trickler.start()
        time.sleep(1)  # let every slow request reach the server

        probes = []
        end = time.monotonic() + PROBE_SECONDS
        while time.monotonic() < end:
            started = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1)
            try:
                connection.request("GET", "/healthz", headers={"Connection": "close"})
                response = connection.getresponse()
                response.read()
                outcome = response.status
            except OSError as exc:  # a time-out or a refused connection
                outcome = type(exc).__name__
            finally:
                connection.close()
            probes.append((outcome, round(time.monotonic() - started, 3)))
            time.sleep(0.2)
    finally:
        stop.set()
        if trickler is not None:
            trickler.join(timeout=5)
        for sock in sockets:
            sock.close()
        server.stop()

    failed = [probe for probe in probes if probe[0] != 200 or probe[1] >= 1]
    assert not failed, f"{len(failed)} of {len(probes)} probes failed: {failed[:10]}"
    assert len(probes) >= 20  # about one every 0.2 s when each answers at once
