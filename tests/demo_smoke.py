"""Calls the three partner APIs of a freshly seeded demo (`make run`'s database) as a client
would, with the demo credentials; run by tests/test_project.py on SQLite."""

import json
import os
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project, however installed
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
django.setup()

from django.test import Client  # noqa: E402
from uuid6 import uuid7  # noqa: E402

from partners import signing  # noqa: E402

demo = json.loads(sys.stdin.read())
partner, alice = demo["partner"], demo["customers"][0]
client = Client()
results = {}


def signed(method, path, body=None, query=""):
    request_id = str(uuid7())
    text = json.dumps(body) if body is not None else ""
    canonical = signing.canonical_json(body) if body is not None else ""
    headers = {
        "X-API-KEY": partner["hmac_key"],
        "X-API-REQUEST": request_id,
        "X-API-SIGNATURE": signing.sign(
            partner["hmac_secret"], method, path, request_id, canonical
        ),
    }
    response = client.generic(
        method, path + query, text, content_type="application/json", headers=headers
    )
    return response.status_code, response.json()


results["get"] = signed(
    "GET", "/get-points-by-address", query=f"?address={alice['wallet_address']}"
)
deduct = {"address": alice["wallet_address"], "deductPoints": 100, "yggRedemptionId": "demo-1"}
results["deduct"] = signed("POST", "/deduct-points-by-address", deduct)
results["deduct_again"] = signed("POST", "/deduct-points-by-address", deduct)
too_much = {**deduct, "deductPoints": 10**9, "yggRedemptionId": "demo-2"}
results["deduct_too_much"] = signed("POST", "/deduct-points-by-address", too_much)
token = {"HTTP_AUTHORIZATION": f"Token {partner['api_key']}"}
store = demo["stores"][0]["id"]
body = {"user": alice["email"], "amount": 5, "merchant": demo["merchant"]["id"], "store": store}
for name in ("credit", "debit"):
    response = client.post(f"/api/balances/{name}", body, content_type="application/json", **token)
    results[name] = (response.status_code, response.json())
response = client.put(
    "/api/stamp/v1/remove",
    {"stampIdx": alice["stamp"]},
    content_type="application/json",
    HTTP_AUTHORIZATION=f"APIKey {partner['api_key']}",
)
results["remove"] = (response.status_code, response.json())
print(json.dumps(results))
