"""The partner APIs in the OpenAPI schema: every path, its auth scheme, its real shapes."""

import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PARTNER_PATHS = {
    "/api/stamp/v1/create": ("post", "StampAPIKey"),
    "/api/stamp/v1/add": ("put", "StampAPIKey"),
    "/api/stamp/v1/remove": ("put", "StampAPIKey"),
    "/api/stamp/v1/validate": ("get", "StampAPIKey"),
    "/api/stamp/v1/update": ("put", "StampAPIKey"),
    "/api/stamp/v1/delete": ("delete", "StampAPIKey"),
    "/api/balances/credit": ("post", "BalanceToken"),
    "/api/balances/debit": ("post", "BalanceToken"),
    "/api/balances/cancel": ("post", "BalanceToken"),
    "/get-points-by-address": ("get", "PointsHMAC"),
    "/deduct-points-by-address": ("post", "PointsHMAC"),
    "/revert-deduct-points": ("post", "PointsHMAC"),
    "/confirm-redemption": ("post", "PointsHMAC"),
}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize(("path", "expected"), PARTNER_PATHS.items())
def test_every_partner_endpoint_is_described_with_its_auth(schema, path, expected):
    method, scheme = expected
    operation = schema["paths"][path][method]
    assert operation["security"] == [{scheme: []}]
    # Every status the family's exception handler can answer here is documented (schemathesis'
    # status_code_conformance holds the views to it, tests/partners/test_fuzz.py).
    assert {"200", "400", "401", "429"} <= operation["responses"].keys()
    if method in ("post", "put"):
        assert {"409", "413", "422"} <= operation["responses"].keys()
    if method in ("post", "put"):
        assert operation["requestBody"]["content"]["application/json"]["schema"]
        names = {p["name"] for p in operation.get("parameters", [])}
        assert "Idempotency-Key" in names


def test_points_endpoints_document_the_signed_headers(schema):
    for path in ("/get-points-by-address", "/deduct-points-by-address"):
        method = PARTNER_PATHS[path][0]
        names = {p["name"] for p in schema["paths"][path][method]["parameters"]}
        assert {"X-API-REQUEST", "X-API-SIGNATURE"} <= names


def test_request_shapes_are_the_real_ones(schema):
    components = schema["components"]["schemas"]
    deduct = components["DeductRequest"]
    assert set(deduct["required"]) == {"address", "deductPoints", "yggRedemptionId"}
    move = components["MoveRequest"]
    assert set(move["properties"]) == {"user", "amount", "type", "merchant", "store"}
    assert move["properties"]["amount"]["oneOf"][0] == {"type": "integer"}


def test_the_whole_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))


def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
    # Served from the app itself: no script, style or link from another origin. (The page's
    # random CSP nonce is left out of the check: it may spell "cdn" by chance.)
    page = re.sub(rb'nonce="[^"]*"', b"", docs.content).lower()
    assert b"cdn" not in page
    assert not re.search(rb'(src|href)="(https?:)?//', page)
