"""Over-size bodies through the real server: the client always gets its 413 in the API
family's shape, never a connection closed while it is still sending."""

from __future__ import annotations

import http.client
import json
import time

import pytest
from django.contrib.auth.models import Permission

from tests import factories
from tests.api.conftest import token_for
from tests.partners.conftest import PointsClient
from tests.serving.server import Server, server_database_url

pytestmark = pytest.mark.django_db(transaction=True)

ITERATIONS = 30
BODY_KIB = 70
PIECE = 1024


@pytest.fixture
def staff(db):
    """A staff user with the permissions given directly: a transactional test's flush keeps
    permissions (post_migrate) but not the role groups of the data migration."""
    user = factories.UserFactory(username="oversize")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts",
            codename__in=["view_customer", "adjust_balance_customer"],
        )
    )
    return user


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path / "server.log", workers=2, env={"DATABASE_URL": server_database_url()})
    yield server
    server.stop()


def post(server: Server, path: str, body: bytes, headers: dict) -> tuple[int | str, bytes]:
    """POST the whole body in 1 KiB pieces, a millisecond apart, as it arrives over a
    real network (on loopback a single send lands whole before the server even looks)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("POST", path)
        # `Connection: close`, as urllib and many partner clients send it: the server then
        # closes after its answer, and unread body bytes turn that close into a reset.
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Connection": "close",
            **headers,
        }
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        for start in range(0, len(body), PIECE):
            connection.send(body[start : start + PIECE])
            time.sleep(0.001)
        response = connection.getresponse()
        return response.status, response.read()
    except OSError as exc:  # RemoteDisconnected, a reset or a broken pipe
        return type(exc).__name__, b""
    finally:
        connection.close()


def big_body(**fields) -> bytes:
    return json.dumps({**fields, "padding": "x" * (BODY_KIB * 1024)}).encode()


def test_points_api_always_answers_413(server, partner, customer):
    points = PointsClient(partner.credentials.hmac_key, partner.credentials.hmac_secret)
    path = "/deduct-points-by-address"
    outcomes = []
    for number in range(ITERATIONS):
        body = big_body(
            address=customer.wallet_address, deductPoints=1, yggRedemptionId=f"r{number}"
        )
        status, content = post(server, path, body, points.headers("POST", path, body.decode()))
        outcomes.append(status)
        if status == 413:
            payload = json.loads(content)
            assert payload["success"] is False and payload["errorCode"] == "ERR-INVALID-REQUEST"
            assert isinstance(payload["errorMessage"], str)
    assert outcomes == [413] * ITERATIONS, outcomes


def test_staff_api_always_answers_413(server, staff, customer):
    path = f"/api/v1/customers/{customer.pk}/adjust-balance/"
    headers = {"Authorization": f"Token {token_for(staff)}"}
    outcomes = []
    for _ in range(ITERATIONS):
        status, content = post(server, path, big_body(amount=1, reason="too big"), headers)
        outcomes.append(status)
        if status == 413:
            payload = json.loads(content)
            assert set(payload) == {"code", "message", "fields"}
            assert payload["code"] == "body_too_large"
    assert outcomes == [413] * ITERATIONS, outcomes
