"""Partner API clients that send what a real integrator sends: real Authorization headers,
real HMAC signatures over canonical JSON, fresh UUIDv7 request ids."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client
from uuid6 import uuid7

from loyalty.audit import Channel
from partners import signing
from partners.services import partner_create
from tests import factories


class KeyClient:
    """Stamp API (`APIKey`) and Balance API (`Token`/`Bearer`) client."""

    def __init__(self, keyword: str, api_key: str) -> None:
        self.client = Client()
        self.auth = f"{keyword} {api_key}"

    def call(
        self,
        method: str,
        path: str,
        body=None,
        *,
        raw: str | None = None,
        headers=None,
        params=None,
    ):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(
            method,
            path + _query(params),
            data,
            content_type="application/json",
            headers={"Authorization": self.auth, **(headers or {})},
        )


def _query(params) -> str:
    if not params:
        return ""
    from urllib.parse import urlencode

    return "?" + urlencode(params)


class PointsClient:
    """Signs every request as the YGG partner does and checks the response signature."""

    def __init__(self, hmac_key: str, secret: str) -> None:
        self.client = Client()
        self.hmac_key, self.secret = hmac_key, secret

    def headers(self, method: str, path: str, body_text: str, request_id: str | None = None):
        request_id = request_id or str(uuid7())
        canonical = signing.canonical_json(json.loads(body_text)) if body_text else ""
        return {
            "X-API-KEY": self.hmac_key,
            "X-API-REQUEST": request_id,
            "X-API-SIGNATURE": signing.sign(self.secret, method, path, request_id, canonical),
        }

    def call(
        self,
        method: str,
        path: str,
        body=None,
        *,
        raw: str | None = None,
        headers=None,
        params=None,
        request_id: str | None = None,
    ):
        text = raw if raw is not None else (json.dumps(body) if body is not None else "")
        signed = self.headers(method, path, text, request_id)
        response = self.client.generic(
            method,
            path + _query(params),
            text,
            content_type="application/json",
            headers={**signed, **(headers or {})},
        )
        response.request_id = signed["X-API-REQUEST"]
        if response.status_code == 200:
            expected = signing.sign(
                self.secret,
                method,
                path,
                signed["X-API-REQUEST"],
                signing.canonical_json(json.loads(response.content)),
            )
            assert response["X-API-SIGNATURE"] == expected, "response signature"
            assert response.content.decode() == signing.canonical_json(json.loads(response.content))
        return response

    def get(self, path, params):
        return self.call("GET", path, params=params)

    def post(self, path, body, **kwargs):
        return self.call("POST", path, body, **kwargs)


@pytest.fixture
def stamp_api(partner):
    return KeyClient("APIKey", partner.credentials.api_key)


@pytest.fixture
def balance_api(partner):
    return KeyClient("Token", partner.credentials.api_key)


@pytest.fixture
def points_api(partner):
    return PointsClient(partner.credentials.hmac_key, partner.credentials.hmac_secret)


@pytest.fixture
def other_partner(db):
    """Partner B with its own merchant, store, card, customer and stamp."""
    merchant = factories.MerchantFactory(name="Other merchant")
    partner, credentials = partner_create(
        actor=None, channel=Channel.COMMAND, name="Partner B", merchants=[merchant]
    )
    partner.credentials = credentials
    partner.store = factories.StoreFactory(merchant=merchant)
    partner.customer = factories.CustomerFactory(merchant=merchant)
    partner.stamp = factories.StampFactory(
        card=factories.StampCardFactory(merchant=merchant), customer=partner.customer, count=3
    )
    return partner


def new_request_id() -> str:
    return str(uuid7())


def uuid7_at(epoch_seconds: float) -> str:
    """A UUIDv7 whose embedded time is `epoch_seconds`."""
    millis = int(epoch_seconds * 1000)
    value = (millis << 80) | (0x7 << 76) | (0x2 << 62) | (uuid.uuid4().int & ((1 << 62) - 1))
    value |= (uuid.uuid4().int & 0xFFF) << 64
    return str(uuid.UUID(int=value))
