"""Races through HTTP against a live server on PostgreSQL, many client threads at once."""

import json
import urllib.error
import urllib.request

import pytest

from accounts.models import Customer
from ledger import reconcile
from ledger.models import PointTransaction, Stamp
from tests import factories
from tests.helpers import fund, postgres_only, run_concurrently
from tests.partners.conftest import PointsClient

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def send(url: str, method: str, body: str, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=body.encode() if body else None,
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_thirty_simultaneous_deductions_of_one_redemption_succeed_once(live_server, partner):
    customer = fund(factories.CustomerFactory(merchant=partner.primary_merchant), points=1000)
    signer = PointsClient(partner.credentials.hmac_key, partner.credentials.hmac_secret)
    body = json.dumps(
        {
            "address": customer.wallet_address,
            "deductPoints": 100,
            "yggRedemptionId": "live-redemption",
        }
    )
    requests = [signer.headers("POST", "/deduct-points-by-address", body) for _ in range(30)]
    results = run_concurrently(
        30, lambda i: send(live_server.url + "/deduct-points-by-address", "POST", body, requests[i])
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 29, results
    original = next(payload for status, payload in results if status == 200)
    assert {p["partnerTransactionId"] for s, p in results if s == 409} == {
        original["partnerTransactionId"]
    }
    assert PointTransaction.objects.filter(redemption_id="live-redemption").count() == 1
    assert Customer.objects.get(pk=customer.pk).points == 900
    assert reconcile.run()[0] == []


def test_twenty_simultaneous_requests_with_one_idempotency_key_change_the_ledger_once(
    live_server, partner, card
):
    stamp = factories.StampFactory(card=card, count=8)
    headers = {
        "Authorization": f"APIKey {partner.credentials.api_key}",
        "Idempotency-Key": "live-remove-1",
    }
    body = json.dumps({"stampIdx": stamp.pk, "reason": "double scan"})
    results = run_concurrently(
        20, lambda i: send(live_server.url + "/api/stamp/v1/remove", "PUT", body, headers)
    )
    ok = [payload for status, payload in results if status == 200]
    in_flight = [payload for status, payload in results if status == 409]
    assert len(ok) + len(in_flight) == 20, results
    assert all(payload["code"] == 0 for payload in ok) and ok
    assert all(payload["code"] == 409 for payload in in_flight)
    assert Stamp.objects.get(pk=stamp.pk).count == 7
    assert Stamp.history.filter(id=stamp.pk, operation="stamp_remove").count() == 1
    # Once the first has finished, the key answers with the stored response.
    status, payload = send(live_server.url + "/api/stamp/v1/remove", "PUT", body, headers)
    assert (status, payload["code"]) == (200, 0)
    assert Stamp.objects.get(pk=stamp.pk).count == 7
