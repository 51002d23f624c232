import pytest

from accounts.errors import CustomerConflict
from accounts.models import Customer
from accounts.services import customer_create, customer_update
from loyalty.audit import Channel
from loyalty.errors import InvalidInput
from tests import factories

pytestmark = pytest.mark.django_db


def test_customer_create_normalises_email_and_wallet(merchant, support):
    customer = customer_create(
        actor=support,
        channel=Channel.STAFF_API,
        merchant=merchant,
        email=" Alice@Example.COM ",
        wallet_address="0xAbCd00000000000000000000000000000000Ef01",
        member_id="M-1",
        name="Alice",
    )
    assert customer.email == "alice@example.com"
    assert customer.wallet_address == "0xabcd00000000000000000000000000000000ef01"
    assert (customer.status, customer.balance, customer.points) == ("Blue", 0, 0)
    row = customer.history.first()
    assert (row.history_user, row.channel) == (support, "staff-api")


def test_customer_needs_an_identifier(merchant):
    with pytest.raises(InvalidInput):
        customer_create(actor=None, channel=Channel.COMMAND, merchant=merchant, name="Nobody")


def test_email_is_unique_per_merchant_case_insensitively(merchant):
    customer_create(actor=None, channel=Channel.COMMAND, merchant=merchant, email="a@x.io")
    with pytest.raises(CustomerConflict):
        customer_create(actor=None, channel=Channel.COMMAND, merchant=merchant, email="A@X.io")
    other = factories.MerchantFactory()
    customer_create(actor=None, channel=Channel.COMMAND, merchant=other, email="a@x.io")
    assert Customer.objects.filter(email="a@x.io").count() == 2


def test_customer_update_changes_identity_and_records_it(customer, support):
    customer_update(
        actor=support, channel=Channel.ADMIN, customer=customer, status="Gold", name="New"
    )
    row = customer.history.first()
    assert (row.status, row.name, row.history_user, row.channel) == (
        "Gold",
        "New",
        support,
        "admin",
    )


def test_customer_update_conflict_changes_nothing(merchant):
    a = factories.CustomerFactory(merchant=merchant, email="a@x.io")
    factories.CustomerFactory(merchant=merchant, email="b@x.io")
    with pytest.raises(CustomerConflict):
        customer_update(actor=None, channel=Channel.ADMIN, customer=a, email="b@x.io")
    assert Customer.objects.get(pk=a.pk).email == "a@x.io"


@pytest.mark.parametrize("email", ["M-1002", "bob", "bob@", "@x.io", "a b@x.io", "bob@x..io"])
def test_customer_email_must_be_an_email_on_create_and_update(merchant, email):
    with pytest.raises(InvalidInput) as refused:
        customer_create(actor=None, channel=Channel.COMMAND, merchant=merchant, email=email)
    assert refused.value.field == "email"
    customer = customer_create(
        actor=None, channel=Channel.COMMAND, merchant=merchant, member_id="M-9"
    )
    with pytest.raises(InvalidInput) as refused:
        customer_update(actor=None, channel=Channel.ADMIN, customer=customer, email=email)
    assert refused.value.field == "email"
    assert Customer.objects.get(pk=customer.pk).email == ""
    assert Customer.objects.count() == 1


def test_an_empty_email_is_still_allowed_with_another_identifier(merchant):
    customer = customer_create(
        actor=None, channel=Channel.COMMAND, merchant=merchant, email="", member_id="M-1"
    )
    assert customer.email == ""
