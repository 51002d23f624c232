"""A partner's `user`/`customer` that is the email of one customer and the member id of
another is refused, never resolved to one of them (a credit once landed on the wrong one)."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Customer
from ledger.models import BalanceUpdate, Stamp
from loyalty.audit import Channel, audited
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def bad_email(merchant):
    """Data written before emails were validated: a customer whose email is `m-1002`."""
    with audited(actor=None, channel=Channel.COMMAND, operation="test_fixture"):
        return Customer.objects.create(merchant=merchant, email="m-1002", name="Typo")


@pytest.fixture
def member(merchant):
    return factories.CustomerFactory(merchant=merchant, member_id="M-1002", email="bob@x.io")


@pytest.fixture
def email_like_member_id(merchant):
    """Valid data can be ambiguous too: member ids are free text."""
    a = factories.CustomerFactory(merchant=merchant, email="carol@x.io", member_id="C-1")
    b = factories.CustomerFactory(merchant=merchant, email="dave@x.io", member_id="carol@x.io")
    return a, b


def credit(balance_api, merchant, store, user):
    body = {"user": user, "amount": 50, "merchant": merchant.pk, "store": store.pk}
    return balance_api.call("POST", "/api/balances/credit", body)


def test_balance_credit_refuses_an_email_that_is_another_customers_member_id(
    balance_api, merchant, store, bad_email, member
):
    response = credit(balance_api, merchant, store, "M-1002")
    assert response.status_code == 400, response.content
    payload = response.json()
    assert (payload["error_code"], list(payload["errors"])) == ("invalid_data", ["user"])
    assert "ambiguous" in payload["error_message"]
    assert BalanceUpdate.objects.count() == 0
    assert {c.balance for c in Customer.objects.all()} == {0}


def test_balance_credit_refuses_valid_but_ambiguous_data(
    balance_api, merchant, store, email_like_member_id
):
    response = credit(balance_api, merchant, store, "carol@x.io")
    assert (response.status_code, response.json()["error_code"]) == (400, "invalid_data")
    assert BalanceUpdate.objects.count() == 0


def test_an_identifier_of_one_customer_still_resolves(
    balance_api, merchant, store, bad_email, member
):
    assert credit(balance_api, merchant, store, "bob@x.io").status_code == 200
    member.refresh_from_db()
    assert member.balance == 50


def test_stamp_create_refuses_the_ambiguous_customer(stamp_api, card, bad_email, member):
    today = timezone.localdate()
    body = {
        "cardIdx": card.pk,
        "customer": "M-1002",
        "strtYmd": today.isoformat(),
        "endYmd": (today + dt.timedelta(days=30)).isoformat(),
    }
    response = stamp_api.call("POST", "/api/stamp/v1/create", body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["code"] == 400 and payload["message"].startswith("customer: ")
    assert "ambiguous" in payload["message"]
    assert Stamp.objects.count() == 0
