"""The partner APIs against their own OpenAPI schema: schemathesis through the WSGI app with
real credentials, as an integrator calls them (`APIKey`, `Token`, and HMAC signatures over
the exact body sent with a fresh UUIDv7 each time).

Half of the cases aim at objects that exist (a stamp, the card, the customer's email or
member id, the merchant and store, a credit, a deduction and its redemption id), so the
happy paths run as well as the refusals. `FUZZ_EXAMPLES` sets the examples per operation
(`make fuzz` runs many more).
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from uuid6 import uuid7

from ledger import services
from loyalty.audit import Channel
from partners import signing
from tests import factories
from tests.helpers import fund, fuzz_examples

PARTNER_PATHS = (
    r"^/(api/stamp/v1/|api/balances/|get-points-by-address$|deduct-points-by-address$"
    r"|revert-deduct-points$|confirm-redemption$)"
)
POINTS_PATHS = {
    "/get-points-by-address",
    "/deduct-points-by-address",
    "/revert-deduct-points",
    "/confirm-redemption",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_AMOUNT = 10**12


@pytest.fixture
def partner_schema(db, settings, _keep_test_connection):
    settings.PARTNER_THROTTLE_RATE = "1000000/min"  # the fuzzer is one fast partner
    settings.STAMP_REMOVALS_PER_STAMP_PER_DAY = 1_000_000
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]  # schemathesis' WSGI host
    from loyalty.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    return schema.include(path_regex=PARTNER_PATHS)


class World:
    """The partner's real objects; stamps, credits and deductions are made fresh on demand so
    that an earlier case (a delete, a cancel, a revert) does not close a later happy path."""

    def __init__(self, partner, merchant, store, customer, card, chooser: random.Random):
        self.partner, self.merchant, self.store = partner, merchant, store
        self.customer, self.card, self.chooser = customer, card, chooser
        self.redemptions = 0

    def user(self) -> str:
        c = self.customer
        return self.chooser.choice([c.email, c.email.upper(), c.member_id])

    def address(self) -> str:
        address = self.customer.wallet_address
        return self.chooser.choice([address, "0x" + address[2:].upper()])

    def stamp(self):
        count = self.chooser.choice([0, 5, self.card.max_stamps])
        return factories.StampFactory(card=self.card, customer=self.customer, count=count)

    def credit(self):
        return services.balance_credit(
            actor=None,
            channel=Channel.COMMAND,
            customer=self.customer,
            store=self.store,
            amount=self.chooser.randint(1, 100),
        )

    def deduction(self):
        self.redemptions += 1
        return services.point_deduct(
            actor=self.partner.user,
            channel=Channel.POINTS_API,
            partner=self.partner,
            customer=self.customer,
            points=self.chooser.randint(1, 100),
            redemption_id=f"fuzz-redemption-{self.redemptions}",
        )

    def aim(self, case) -> None:
        """Replace the generated identifiers that are present with real ones."""
        path, body = case.formatted_path, case.body
        fields: dict = {}
        if path in ("/api/stamp/v1/validate", "/api/stamp/v1/delete"):
            if "stampIdx" in (case.query or {}):
                case.query["stampIdx"] = self.stamp().pk
            return
        if path == "/get-points-by-address":
            if "address" in (case.query or {}):
                case.query["address"] = self.address()
            return
        if path == "/api/stamp/v1/create":
            fields = {"cardIdx": self.card.pk, "customer": self.user()}
        elif path.startswith("/api/stamp/v1/"):
            fields = {"stampIdx": self.stamp().pk}
        elif path in ("/api/balances/credit", "/api/balances/debit"):
            fields = {
                "user": self.user(),
                "merchant": self.merchant.pk,
                "store": self.store.pk,
                "type": "stamps",
            }
        elif path == "/api/balances/cancel":
            fields = {"id": self.credit().pk}
        elif path == "/deduct-points-by-address":
            fields = {"address": self.address()}
        elif path in ("/revert-deduct-points", "/confirm-redemption"):
            deduction = self.deduction()
            fields = {
                "address": self.address(),
                "deductPoints": -deduction.points,
                "yggRedemptionId": deduction.redemption_id,
                "partnerTransactionId": deduction.partner_transaction_id,
            }
            if path == "/confirm-redemption" and self.chooser.random() < 0.5:
                # Valid amounts and times but one, which keeps its generated value: otherwise
                # the happy path is rare, and so is a bad value that gets past the others.
                valid = {
                    "usdAmount": "12.5",
                    "yggAmount": 80.123456789,
                    "priceYggUsd": "0.156",
                    "initialAt": "2026-11-20T10:00:00Z",
                    "pendingAt": 1763632800000,
                    "claimedAt": "2026-11-20T10:05:00.000Z",
                    "revertedAt": None,
                }
                del valid[self.chooser.choice(sorted(valid))]
                fields |= valid
        if isinstance(body, dict):
            for name, value in fields.items():
                if name in body:
                    body[name] = value


def sent_body(case) -> bytes:
    """The body schemathesis' WSGI transport will send for `case`."""
    kwargs = case.as_transport_kwargs()
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()  # what werkzeug's test client sends
    data = kwargs.get("data")
    if isinstance(data, str):
        return data.encode()
    return data if isinstance(data, bytes) else b""


def canonical_body(case) -> str:
    """What an integrator signs: "" for GET or an empty body, else the canonical JSON of the
    parsed body. A body that is not JSON cannot be signed; it is signed as empty."""
    if case.method.upper() == "GET":
        return ""
    raw = sent_body(case)
    if not raw.strip():
        return ""
    try:
        return signing.canonical_json(json.loads(raw))
    except (ValueError, TypeError):
        return ""


class Credentials:
    def __init__(self, credentials) -> None:
        self.api_key = credentials.api_key
        self.hmac_key, self.secret = credentials.hmac_key, credentials.hmac_secret

    def headers(self, case) -> dict[str, str]:
        path = case.formatted_path
        if path.startswith("/api/stamp/"):
            return {"Authorization": f"APIKey {self.api_key}"}
        if path.startswith("/api/balances/"):
            return {"Authorization": f"Token {self.api_key}"}
        request_id = str(uuid7())
        signature = signing.sign(
            self.secret, case.method.upper(), path, request_id, canonical_body(case)
        )
        return {
            "X-API-KEY": self.hmac_key,
            "X-API-REQUEST": request_id,
            "X-API-SIGNATURE": signature,
        }

    def check_response_signature(self, case, headers, response) -> None:
        if case.formatted_path not in POINTS_PATHS or response.status_code != 200:
            return
        body = json.loads(response.content)
        assert response.content.decode() == signing.canonical_json(body)
        expected = signing.sign(
            self.secret,
            case.method.upper(),
            case.formatted_path,
            headers["X-API-REQUEST"],
            signing.canonical_json(body),
        )
        assert response.headers["x-api-signature"] == [expected], "response signature"


@pytest.fixture
def world(partner, merchant, store, customer, card):
    fund(customer, balance=MAX_AMOUNT, points=MAX_AMOUNT, store=store)
    return World(partner, merchant, store, customer, card, random.Random(7))


def test_partner_apis_conform_to_their_schema(partner_schema, world, partner):
    """Every partner operation, positive and negative examples, signed as a real partner."""
    credentials = Credentials(partner.credentials)
    examples = fuzz_examples()
    chooser = random.Random(5)
    calls: Counter[str] = Counter()
    statuses: dict[str, Counter[int]] = {}
    failures: list[str] = []
    operations = [result.ok() for result in partner_schema.get_all_operations()]
    assert len(operations) == 13

    def fuzz(operation) -> None:
        label = operation.label
        statuses[label] = Counter()
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=strategy)
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            if chooser.random() < 0.5:
                world.aim(case)
            headers = credentials.headers(case)  # after aiming: the signature covers the body
            calls[label] += 1
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[label][response.status_code] += 1
            credentials.check_response_signature(case, headers, response)

        run()

    for operation in operations:
        try:
            fuzz(operation)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")

    summary = "\n".join(f"  {label}: {dict(sorted(statuses[label].items()))}" for label in calls)
    assert failures == [], "\n\n".join(failures) + "\n\nstatuses:\n" + summary
    assert calls.total() >= min(examples, 10) * len(operations)
    if examples >= 10:  # the credentials work: each family answered 200 (Points: a signed
        # query and a signed body)
        answered = {label for label in calls if statuses[label][200]}
        paths = {label.split(" ")[1] for label in answered}
        assert any(path.startswith("/api/stamp/") for path in paths), summary
        assert any(path.startswith("/api/balances/") for path in paths), summary
        assert "GET /get-points-by-address" in answered, summary
        assert any(label.startswith("POST") and label[5:] in POINTS_PATHS for label in answered)
    print(f"schemathesis: {len(operations)} partner operations, {calls.total()} calls\n{summary}")
