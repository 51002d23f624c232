"""loyalty.request_body in-process: what it reads before the app, and what after."""

import io

from loyalty.request_body import DRAIN_LIMIT, RequestBodyMiddleware


class Input(io.BytesIO):
    """A client's body, remembering how much of it the server was asked for."""


def call(app, body: bytes | Input, **environ):
    stream = body if isinstance(body, Input) else Input(body)
    environ = {"wsgi.input": stream, **environ}
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["read_before_answer"] = stream.tell()

    RequestBodyMiddleware(app)(environ, start_response)
    return stream, seen


def refusing_app(environ, start_response):
    """Answers without reading the body, as a 413 on the Content-Length does."""
    start_response("413 Content Too Large", [])
    return [b""]


def test_a_body_within_the_limit_is_read_before_the_app_runs(settings):
    body = b'{"a": 1}'
    stream = Input(body)
    seen = {}

    def app(environ, start_response):
        seen["read_by_server"] = stream.tell()
        seen["app_reads"] = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b""]

    call(app, stream, CONTENT_LENGTH=str(len(body)))
    assert seen == {"read_by_server": len(body), "app_reads": body}


def test_a_refused_body_is_read_before_the_answer_up_to_the_bound(settings):
    body = b"x" * (70 * 1024)
    _, seen = call(refusing_app, body, CONTENT_LENGTH=str(len(body)))
    assert seen["read_before_answer"] == len(body)

    huge = b"x" * (DRAIN_LIMIT + 1)
    _, seen = call(refusing_app, huge, CONTENT_LENGTH=str(len(huge)))
    assert seen["read_before_answer"] == 0  # too much: the connection may close instead


def test_a_chunked_body_is_drained_to_its_end_or_the_bound(settings):
    _, seen = call(refusing_app, b"x" * 5000, HTTP_TRANSFER_ENCODING="chunked")
    assert seen["read_before_answer"] == 5000
    _, seen = call(refusing_app, b"x" * (2 * DRAIN_LIMIT), HTTP_TRANSFER_ENCODING="chunked")
    assert seen["read_before_answer"] == DRAIN_LIMIT


def test_a_body_the_app_read_is_not_read_again(settings):
    body = b"x" * (70 * 1024)

    def app(environ, start_response):
        environ["wsgi.input"].read(len(body))
        start_response("413 Content Too Large", [])
        return [b""]

    _, seen = call(app, body + b"next request", CONTENT_LENGTH=str(len(body)))
    assert seen["read_before_answer"] == len(body)  # the pipelined bytes after it untouched
