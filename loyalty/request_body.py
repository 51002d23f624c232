"""WSGI middleware: read a request's body before Django runs, discard what it left unread.

Both guard the workers against their clients:

* A body is read whole (when its Content-Length is within DATA_UPLOAD_MAX_MEMORY_SIZE) before
  the application starts. Otherwise a client trickling its body holds, for as long as it
  likes, what the view took before reading it: a database connection from the pool (the
  Points API looks the partner's key up first). Fifty such clients emptied the pool and
  `/healthz` stopped answering. Now a slow client costs one server thread and nothing else.
* An answer given without reading the whole body (a 413 on the Content-Length, a 401 before
  the body is looked at) leaves bytes unread; when the server then closes the connection,
  the kernel answers them with a reset, and the client, still sending, never reads the
  answer. The rest is read first, up to DRAIN_LIMIT; past that, closing is fine.
"""

from __future__ import annotations

import io

from django.conf import settings

DRAIN_LIMIT = 1024 * 1024
_CHUNK = 64 * 1024


class _CountingInput:
    """`wsgi.input` that counts what the application read, and sees its end."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.consumed = 0
        self.exhausted = False

    def _count(self, data: bytes, size) -> bytes:
        self.consumed += len(data)
        if not data and size != 0:
            self.exhausted = True
        return data

    def read(self, size=-1):
        whole = size is None or size < 0
        return self._count(self._stream.read() if whole else self._stream.read(size), size)

    def readline(self, size=-1):
        whole = size is None or size < 0
        return self._count(self._stream.readline() if whole else self._stream.readline(size), size)

    def readlines(self, hint=-1):
        lines = self._stream.readlines(hint)
        self.consumed += sum(map(len, lines))
        return lines

    def __iter__(self):
        return iter(self.readline, b"")


def _content_length(environ) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


def _read_exactly(stream, length: int) -> bytes:
    """Up to `length` bytes; fewer only when the client ends the body early."""
    pieces, left = [], length
    while left > 0:
        data = stream.read(min(_CHUNK, left))
        if not data:
            break
        pieces.append(data)
        left -= len(data)
    return b"".join(pieces)


def _drain(stream: _CountingInput, remaining: int | None) -> None:
    """Read and drop the unread rest of the body (None: to its end, for a chunked one)."""
    if remaining is not None and remaining > DRAIN_LIMIT:
        return  # not worth receiving: the server may close and the client see a reset
    budget = DRAIN_LIMIT if remaining is None else remaining
    try:
        while budget > 0 and not stream.exhausted:
            data = stream.read(min(_CHUNK, budget))
            if not data:
                return
            budget -= len(data)
    except OSError:  # the client went away: nothing left to protect
        return


class RequestBodyMiddleware:
    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ, start_response):
        length = _content_length(environ)
        if length and length <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            body = _read_exactly(environ["wsgi.input"], length)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        stream = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = stream

        def drain_then_start_response(status, headers, exc_info=None):
            # Called before the server sends a byte of the answer.
            if length is not None:
                _drain(stream, length - stream.consumed)
            elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                _drain(stream, None)
            return start_response(status, headers, exc_info)

        return self.application(environ, drain_then_start_response)
