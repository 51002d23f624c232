"""The pool's health check (loyalty.pool_check): a connection idle past the threshold is
pinged and, when dead, replaced before a request sees it; a busy one is not pinged."""

from __future__ import annotations

import http.client
import time
import uuid

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from loyalty.pool_check import ping_when_idle
from tests.serving.server import Server, server_database_url

pytestmark = pytest.mark.django_db(transaction=True)


def terminate(application_name: str) -> int:
    with psycopg.connect(server_database_url(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        ).fetchall()
    return len(rows)


@pytest.fixture
def pings(monkeypatch):
    counted = []
    real = ConnectionPool.check_connection
    monkeypatch.setattr(
        ConnectionPool, "check_connection", staticmethod(lambda c: (counted.append(1), real(c)))
    )
    return counted


def one_connection_pool(check, name: str) -> ConnectionPool:
    pool = ConnectionPool(
        server_database_url(),
        min_size=1,
        max_size=1,
        kwargs={"application_name": name},
        check=check,
        open=False,
    )
    pool.open(wait=True)
    return pool


def test_a_busy_connection_is_not_pinged(pings):
    pool = one_connection_pool(ping_when_idle(60), f"busy-{uuid.uuid4().hex[:8]}")
    try:
        for _ in range(20):
            with pool.connection() as conn:
                conn.execute("SELECT 1")
    finally:
        pool.close()
    assert len(pings) == 1  # its first use only: nothing was known of it


def test_an_idle_dead_connection_is_pinged_and_replaced(pings):
    name = f"idle-{uuid.uuid4().hex[:8]}"
    pool = one_connection_pool(ping_when_idle(0.2), name)
    try:
        with pool.connection() as conn:
            first = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert terminate(name) == 1
        time.sleep(0.3)
        with pool.connection() as conn:  # the check found it dead: a new one
            second = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    finally:
        pool.close()
    assert second != first
    assert len(pings) == 3  # first use; the dead one; its fresh replacement


def healthz(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize(("idle_seconds", "survives"), [("1", True), ("3600", False)])
def test_the_real_server_replaces_a_terminated_connection(tmp_path, idle_seconds, survives):
    """Past the threshold the next request works; with the threshold out of reach (the
    control) the dead connection reaches a request, so the check is what saves it."""
    name = f"serve-{uuid.uuid4().hex[:8]}"
    server = Server(
        tmp_path / "server.log",
        workers=1,
        env={
            "DATABASE_URL": server_database_url(),
            "DATABASE_POOL_MIN_SIZE": "1",
            "DATABASE_POOL_MAX_SIZE": "1",
            "DATABASE_POOL_CHECK_IDLE_SECONDS": idle_seconds,
            "PGAPPNAME": name,
        },
    )
    try:
        assert healthz(server.port) == 200
        assert terminate(name) == 1
        time.sleep(1.5)
        statuses = [healthz(server.port) for _ in range(3)]
    finally:
        server.stop()
    if survives:
        assert statuses == [200, 200, 200]
    else:
        assert statuses[0] == 503
        assert statuses[1:] == [200, 200]
