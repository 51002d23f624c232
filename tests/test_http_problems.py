"""The same malformed input gets a clear 4xx in each API family's own shape, never a 500.

One body reader and one classifier serve the staff API and the three partner families; these
cases are where the two ladders they replaced disagreed (a float beyond 2^53 read as an
integer, nesting limited in the partner APIs only, a lone surrogate accepted, an
IntegrityError answered 500), plus the ones they already agreed on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from accounts import tokens
from accounts.models import Customer
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from partners import signing
from tests.helpers import fund
from tests.partners.conftest import KeyClient, PointsClient, new_request_id

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Family:
    """One API family's write endpoint: how to send it a body and read its error."""

    name: str
    send: Any  # (raw body: str | bytes) -> response
    valid: dict  # a body the endpoint accepts
    integer_field: str  # an integer field of that body
    table: str  # the table a successful call writes to
    shape: Any  # (payload) -> None, asserts the family's error envelope
    message: Any  # (payload) -> the error's human text


def staff_shape(payload):
    assert set(payload) == {"code", "message", "fields"}
    assert payload["code"] and payload["message"]


def stamp_shape(payload):
    assert set(payload) == {"code", "message", "result"}
    assert payload["code"] != 0 and payload["result"] is None


def balance_shape(payload):
    assert set(payload) == {"detail", "error_message", "error_code", "errors"}


def points_shape(payload):
    assert payload["success"] is False and payload["errorCode"].startswith("ERR-")
    assert isinstance(payload["errorMessage"], str)


def staff_message(payload) -> str:
    return " ".join([payload["message"], *(m for ms in payload["fields"].values() for m in ms)])


def _staff(world) -> Family:
    from django.test import Client

    token = tokens.issue(world["support"])[0]
    client = Client()
    path = f"/api/v1/customers/{world['customer'].pk}/adjust-balance/"

    def send(raw):
        return client.generic(
            "POST", path, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
        )

    return Family(
        "staff",
        send,
        {"amount": 5, "reason": "goodwill credit"},
        "amount",
        BalanceUpdate._meta.db_table,
        staff_shape,
        staff_message,
    )


def _stamp(world) -> Family:
    client = KeyClient("APIKey", world["partner"].credentials.api_key)
    return Family(
        "stamp",
        lambda raw: client.call("PUT", "/api/stamp/v1/add", raw=raw),
        {"stampIdx": world["stamp"].pk},
        "stampIdx",
        Stamp._meta.db_table,
        stamp_shape,
        lambda payload: payload["message"],
    )


def _balance(world) -> Family:
    client = KeyClient("Token", world["partner"].credentials.api_key)
    body = {
        "user": world["customer"].email,
        "amount": 5,
        "merchant": world["customer"].merchant_id,
        "store": world["store"].pk,
    }
    return Family(
        "balance",
        lambda raw: client.call("POST", "/api/balances/credit", raw=raw),
        body,
        "amount",
        BalanceUpdate._meta.db_table,
        balance_shape,
        lambda payload: payload["error_message"],
    )


def _points(world) -> Family:
    credentials = world["partner"].credentials
    client = PointsClient(credentials.hmac_key, credentials.hmac_secret)
    path = "/deduct-points-by-address"

    def send(raw):
        # Signed as a client would sign it when the body can be canonicalised at all.
        text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
        request_id = new_request_id()
        try:
            canonical = signing.canonical_json(json.loads(text))
            signature = signing.sign(credentials.hmac_secret, "POST", path, request_id, canonical)
        except (ValueError, TypeError):
            signature = "0" * 64
        headers = {
            "X-API-KEY": credentials.hmac_key,
            "X-API-REQUEST": request_id,
            "X-API-SIGNATURE": signature,
        }
        return client.client.generic(
            "POST", path, raw, content_type="application/json", headers=headers
        )

    body = {
        "address": world["customer"].wallet_address,
        "deductPoints": 5,
        "yggRedemptionId": "parity-1",
    }
    return Family(
        "points",
        send,
        body,
        "deductPoints",
        PointTransaction._meta.db_table,
        points_shape,
        lambda payload: payload["errorMessage"],
    )


FAMILIES = {"staff": _staff, "stamp": _stamp, "balance": _balance, "points": _points}


@pytest.fixture(params=FAMILIES)
def family(request, partner, support, stamp, store):
    customer = fund(stamp.customer, balance=100, points=100, store=store)
    world = {
        "partner": partner,
        "support": support,
        "stamp": stamp,
        "store": store,
        "customer": customer,
    }
    return FAMILIES[request.param](world)


def snapshot():
    return (
        list(Customer.objects.order_by("id").values_list("id", "balance", "points")),
        list(Stamp.objects.order_by("id").values_list("id", "count")),
        BalanceUpdate.objects.count(),
        PointTransaction.objects.count(),
    )


def nested(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def with_field(family: Family, name: str, raw_value: str) -> str:
    """The family's valid body with `name` set to `raw_value` (JSON text, written as is)."""
    body = json.dumps({**family.valid, name: "__VALUE__"})
    return body.replace('"__VALUE__"', raw_value)


def assert_refused(family: Family, response, status: int):
    assert response.status_code == status, (family.name, response.content)
    payload = response.json()
    family.shape(payload)
    return payload


def test_the_valid_body_is_accepted(family):
    # The cases below change one thing each; without it the call succeeds.
    response = family.send(json.dumps(family.valid))
    assert response.status_code == 200, response.content


def test_a_float_beyond_2_53_is_not_an_integer(family):
    before = snapshot()
    raw = with_field(family, family.integer_field, "18014398509481984.0")  # 2^54
    payload = assert_refused(family, family.send(raw), 400)
    assert "integer" in family.message(payload).lower()
    assert snapshot() == before


def test_a_body_nested_65_deep_is_refused(family):
    before = snapshot()
    raw = json.dumps({**family.valid, "extra": nested(64)})  # the object is level 1
    payload = assert_refused(family, family.send(raw), 400)
    assert "nested deeper than 64 levels" in family.message(payload)
    assert snapshot() == before


def test_a_body_nested_64_deep_is_read(family):
    raw = json.dumps({**family.valid, "extra": nested(63)})
    assert family.send(raw).status_code == 200


@pytest.mark.parametrize(
    "raw_value",
    ["NaN", "Infinity", "-Infinity", "1e400"],
    ids=["nan", "infinity", "minus-infinity", "overflow"],
)
def test_json_constants_and_overflowing_numbers_are_refused(family, raw_value):
    before = snapshot()
    raw = with_field(family, family.integer_field, raw_value)
    assert_refused(family, family.send(raw), 400)
    raw = with_field(family, "extra", raw_value)  # also where the field is unknown
    assert_refused(family, family.send(raw), 400)
    assert snapshot() == before


@pytest.mark.parametrize(
    "raw",
    [b'{"extra": "\xff\xfe"}', '{"extra": "\\ud800abc"}'],
    ids=["invalid-utf-8", "lone-surrogate"],
)
def test_text_that_is_not_utf_8_is_refused(family, raw):
    before = snapshot()
    body = json.dumps(family.valid)[:-1] + ", "
    raw = (body.encode() + raw[1:]) if isinstance(raw, bytes) else body + raw[1:]
    assert_refused(family, family.send(raw), 400)
    assert snapshot() == before


def test_an_integrity_error_raised_by_a_service_is_a_409(family):
    # A constraint the service's own checks do not know about, as a race would present it:
    # the database refuses the write. NOT VALID: it binds new rows only; the test's
    # transaction drops it again.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fire the fixtures' deferred checks
        cursor.execute(
            f"ALTER TABLE {connection.ops.quote_name(family.table)} "
            "ADD CONSTRAINT parity_refuses_every_write CHECK (false) NOT VALID"
        )
    before = snapshot()
    assert_refused(family, family.send(json.dumps(family.valid)), 409)
    assert snapshot() == before


def test_a_body_over_64_kib_is_a_413(family):
    before = snapshot()
    raw = json.dumps({**family.valid, "padding": "x" * (64 * 1024)})
    assert_refused(family, family.send(raw), 413)
    assert snapshot() == before
