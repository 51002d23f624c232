"""Balance API (README, wire reference), through real HTTP with `Authorization: Token`."""

import pytest
from django.test import Client

from accounts.models import Customer
from accounts.services import merchant_create, store_create
from ledger import services
from ledger.models import BalanceUpdate
from loyalty.audit import Channel
from partners.services import partner_create
from tests import factories
from tests.helpers import fund
from tests.partners.conftest import KeyClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def move(customer, merchant, store):
    def build(amount=100, **changes):
        return {
            "user": customer.email,
            "amount": amount,
            "type": "stamps",
            "merchant": merchant.pk,
            "store": store.pk,
            **changes,
        }

    return build


def balance(customer):
    return Customer.objects.get(pk=customer.pk).balance


def test_credit_answers_the_contract_body(balance_api, move, customer, partner):
    response = balance_api.call("POST", "/api/balances/credit", move(1000))
    assert response.status_code == 200
    payload = response.json()
    update = BalanceUpdate.objects.get()
    assert payload == {
        "customer": {"id": customer.pk, "balance": 1000, "status": "Blue"},
        "balance_update": {
            "id": update.pk,
            "amount": 1000,
            "type": "stamps",
            "status": "Success",
            "created": update.created.isoformat(),
        },
    }
    row = update.history.first()
    assert (row.history_user, row.channel, row.operation) == (
        partner.user,
        "balance-api",
        "balance_credit",
    )


def test_debit_with_bearer_and_member_id(partner, move, customer):
    fund(customer, balance=500)
    client = KeyClient("Bearer", partner.credentials.api_key)
    response = client.call("POST", "/api/balances/debit", move(200, user=customer.member_id))
    assert response.json()["customer"]["balance"] == 300
    assert balance(customer) == 300


def test_debit_below_zero_is_insufficient_balance_and_changes_nothing(balance_api, move, customer):
    fund(customer, balance=50)
    response = balance_api.call("POST", "/api/balances/debit", move(51))
    assert response.status_code == 400
    assert response.json()["error_code"] == "insufficient_balance"
    assert set(response.json()) == {"detail", "error_message", "error_code", "errors"}
    assert balance(customer) == 50 and BalanceUpdate.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"user": None}, "invalid", "user"),
        ({"amount": 1.5}, "invalid", "amount"),
        ({"amount": 0}, "invalid", "amount"),
        ({"amount": "12a"}, "invalid", "amount"),
        ({"amount": True}, "invalid", "amount"),
        ({"amount": 10**12 + 1}, "invalid", "amount"),
        ({"type": "points"}, "invalid", "type"),
        ({"merchant": "x"}, "invalid", "merchant"),
        ({"user": "nobody@example.com"}, "invalid_data", "user"),
        ({"store": 999999}, "store_not_found", "store"),
    ],
)
def test_validation_errors_have_the_contract_shape(
    balance_api, move, customer, changes, code, field
):
    response = balance_api.call("POST", "/api/balances/credit", move(**changes))
    assert response.status_code == 400
    payload = response.json()
    assert payload["error_code"] == code
    assert payload["detail"] == f"{field}: {payload['error_message']}"
    assert payload["errors"] == {field: payload["error_message"]}
    assert balance(customer) == 0


def test_missing_fields_are_required(balance_api, move):
    request = move()
    del request["amount"]
    response = balance_api.call("POST", "/api/balances/credit", request)
    assert response.json()["error_code"] == "required"
    assert response.json()["errors"] == {"amount": "This field is required."}


def test_type_defaults_to_stamps(balance_api, move, customer):
    request = move(10)
    del request["type"]
    assert balance_api.call("POST", "/api/balances/credit", request).status_code == 200
    assert balance(customer) == 10


def test_merchant_and_store_scoping(balance_api, move, partner, customer, merchant, other_partner):
    # A merchant the partner may not use.
    response = balance_api.call(
        "POST", "/api/balances/credit", move(merchant=other_partner.primary_merchant_id)
    )
    assert response.json()["error_code"] == "invalid_merchant"
    # A store of a merchant the partner may not use reads as unknown.
    response = balance_api.call("POST", "/api/balances/credit", move(store=other_partner.store.pk))
    assert response.json()["error_code"] == "store_not_found"
    # A store of the partner's other merchant is the wrong store for this merchant.
    second = factories.MerchantFactory()
    partner.merchants.add(second)
    response = balance_api.call(
        "POST", "/api/balances/credit", move(store=factories.StoreFactory(merchant=second).pk)
    )
    assert response.json()["error_code"] == "invalid_store"
    assert balance(customer) == 0


def test_cancel_reverses_once(balance_api, move, customer):
    update_id = balance_api.call("POST", "/api/balances/credit", move(300)).json()[
        "balance_update"
    ]["id"]
    response = balance_api.call("POST", "/api/balances/cancel", {"id": str(update_id)})
    assert response.status_code == 200
    assert response.json()["balance_update"]["status"] == "Canceled"
    assert response.json()["customer"]["balance"] == 0
    again = balance_api.call("POST", "/api/balances/cancel", {"id": update_id})
    assert (again.status_code, again.json()["error_code"]) == (400, "already_canceled")
    assert balance(customer) == 0


def test_cancel_of_a_spent_credit_is_refused(balance_api, move, customer):
    credit = balance_api.call("POST", "/api/balances/credit", move(100)).json()
    balance_api.call("POST", "/api/balances/debit", move(80))
    response = balance_api.call(
        "POST", "/api/balances/cancel", {"id": credit["balance_update"]["id"]}
    )
    assert response.json()["error_code"] == "insufficient_balance"
    assert balance(customer) == 20


def test_cancel_of_an_unknown_or_foreign_update_is_404(balance_api, other_partner):
    foreign = services.balance_credit(
        actor=None,
        channel=Channel.COMMAND,
        customer=other_partner.customer,
        store=other_partner.store,
        amount=5,
    )
    for update_id in (foreign.pk, 99999999):
        response = balance_api.call("POST", "/api/balances/cancel", {"id": update_id})
        assert response.status_code == 404
        assert response.json()["error_code"] == "not_found"
    assert BalanceUpdate.objects.get(pk=foreign.pk).status == "Success"


def test_credit_replays_an_idempotency_key(balance_api, move, customer):
    headers = {"Idempotency-Key": "credit-42"}
    first = balance_api.call("POST", "/api/balances/credit", move(42), headers=headers)
    again = balance_api.call("POST", "/api/balances/credit", move(42), headers=headers)
    assert first.json() == again.json()
    assert balance(customer) == 42 and BalanceUpdate.objects.count() == 1
    other = balance_api.call("POST", "/api/balances/credit", move(43), headers=headers)
    assert (other.status_code, other.json()["error_code"]) == (422, "idempotency_key_reused")
    assert balance(customer) == 42


@pytest.mark.parametrize("authorization", ["", "Token nope", "APIKey {key}", "Token"])
def test_bad_credentials_are_401_detail(partner, move, customer, authorization):
    client = Client()
    response = client.post(
        "/api/balances/credit",
        move(),
        content_type="application/json",
        headers={"Authorization": authorization.format(key=partner.credentials.api_key)},
    )
    assert response.status_code == 401
    assert set(response.json()) == {"detail"}
    assert balance(customer) == 0


def test_the_public_docs_curl_requests_work_unchanged():
    """The Stamps docs' cURL examples, byte for byte: merchant 14, store 3, no `type`."""
    merchant = merchant_create(actor=None, channel=Channel.COMMAND, name="Stamps", id=14)
    store_create(actor=None, channel=Channel.COMMAND, merchant=merchant, name="Store", id=3)
    customer = factories.CustomerFactory(merchant=merchant, email="customer@stamps.co.id")
    _, credentials = partner_create(
        actor=None, channel=Channel.COMMAND, name="Docs", merchants=[merchant]
    )
    client = Client()
    auth = {"Authorization": f"Token {credentials.api_key}"}
    credit = client.post(
        "/api/balances/credit",
        '{ "user": "customer@stamps.co.id", "amount": 1000, "merchant": 14, "store": 3}',
        content_type="application/json",
        headers=auth,
    )
    assert credit.status_code == 200 and credit.json()["customer"]["balance"] == 1000
    debit = client.post(
        "/api/balances/debit",
        '{ "user": "customer@stamps.co.id", "amount": 100, "merchant": 14, "store": 3}',
        content_type="application/json",
        headers=auth,
    )
    assert debit.json()["customer"] == {"id": customer.pk, "balance": 900, "status": "Blue"}
    update_id = debit.json()["balance_update"]["id"]
    cancel = client.post(
        "/api/balances/cancel",
        '{"id": "' + str(update_id) + '"}',
        content_type="application/json",
        headers=auth,
    )
    assert cancel.json()["balance_update"]["status"] == "Canceled"
    assert cancel.json()["customer"]["balance"] == 1000
    first_id = credit.json()["balance_update"]["id"]
    cancel_int = client.post(
        "/api/balances/cancel",
        '{ "id": ' + str(first_id) + " }",
        content_type="application/json",
        headers=auth,
    )
    assert cancel_int.json()["customer"]["balance"] == 0
