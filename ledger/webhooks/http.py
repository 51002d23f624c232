"""One webhook POST, to the address that was checked (see `addresses`), with a timeout.

http.client connections whose `connect()` dials the checked IP while the Host header, TLS
SNI and certificate check still use the URL's name: resolving again inside the connection
would let a DNS change between check and connect reach a refused address.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ledger.webhooks import addresses

MAX_ERROR = 500


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (refused address, connection error, timeout)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


_TLS = ssl.create_default_context()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to `url`; never raises for the receiver's or the network's faults."""
    scheme, host, port = addresses.split_url(url)
    try:
        address = addresses.safe_addresses(host, port)[0]
    except addresses.RefusedAddress as exc:
        return Answer(None, f"refused: {exc}"[:MAX_ERROR])
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if scheme == "https":
        conn = _PinnedHTTPS(host, port, address, timeout, _TLS)
    else:
        conn = _PinnedHTTP(host, port, address, timeout)
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)  # a receiver's answer is not kept; bounded read
        status = response.status
        return Answer(status, "" if 200 <= status < 300 else f"HTTP {status} {response.reason}")
    except TimeoutError:
        return Answer(None, f"timed out after {timeout:g} s")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
    finally:
        conn.close()
