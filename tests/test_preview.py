import pytest

from accounts.models import Customer
from ledger import errors, services
from ledger.models import Stamp
from loyalty.audit import Channel
from loyalty.preview import dry_run
from tests import factories

pytestmark = pytest.mark.django_db


def test_dry_run_returns_the_after_value_and_keeps_nothing(card, customer, support):
    stamp = factories.StampFactory(card=card, customer=customer, count=2)
    after = dry_run(
        lambda: services.stamp_remove(
            actor=support, channel=Channel.ADMIN, stamp=stamp, reason="preview it"
        )
    )
    assert after.count == 1
    assert Stamp.objects.get(pk=stamp.pk).count == 2
    assert Stamp.history.filter(id=stamp.pk).count() == 1


def test_dry_run_raises_the_refusal_the_real_call_would(customer, support):
    with pytest.raises(errors.InsufficientBalance):
        dry_run(
            lambda: services.balance_adjust(
                actor=support, channel=Channel.ADMIN, customer=customer, amount=-1, reason="fix"
            )
        )
    assert Customer.objects.get(pk=customer.pk).balance == 0
