"""loyalty.rows.first reads what the ORM reads, without its query compiler."""

import pytest
from django.forms.models import model_to_dict

from accounts.models import Customer
from ledger.models import Stamp
from loyalty import rows

pytestmark = pytest.mark.django_db


def test_first_equals_the_orm(stamp, customer):
    for model, equals in (
        (Stamp, {"id": stamp.pk}),
        (
            Customer,
            {"merchant_id": customer.merchant_id, "wallet_address": customer.wallet_address},
        ),
    ):
        fast = rows.first(model, **equals)
        orm = model.objects.filter(**equals).order_by("pk").first()
        assert type(fast) is model and fast.pk == orm.pk
        assert model_to_dict(fast) == model_to_dict(orm)
        assert {f.attname: getattr(fast, f.attname) for f in model._meta.concrete_fields} == {
            f.attname: getattr(orm, f.attname) for f in model._meta.concrete_fields
        }
        assert not fast._state.adding  # a saved instance, as the ORM returns


def test_first_finds_nothing_where_nothing_can_be(stamp):
    assert rows.first(Stamp, id=stamp.pk + 1000) is None
    assert rows.first(Stamp, id=2**63) is None  # beyond bigint: no row, not a database error
    assert rows.first(Stamp, id=-(2**63) - 1) is None
    assert rows.first(Customer, merchant_id=stamp.merchant_id, wallet_address="0xnobody") is None
