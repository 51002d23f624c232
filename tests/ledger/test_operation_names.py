"""Every history row's `operation` is the name of the service that wrote it, for every
service of every app, so the audit log, the dashboard and the registry read one vocabulary."""

from __future__ import annotations

import inspect
from decimal import Decimal

import pytest

import accounts.services
import partners.services
from accounts.models import Customer, Merchant, Store
from ledger import services
from ledger.models import BalanceUpdate, PointTransaction, Stamp, StampCard
from loyalty.audit import Channel
from partners.models import Partner
from tests import factories
from tests.admin.utils import deduct

HISTORIES = [Merchant, Store, Customer, StampCard, Stamp, BalanceUpdate, PointTransaction, Partner]
ADMIN = Channel.ADMIN
REASON = "operation names"


def _public_services(module) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value)
        and not name.startswith("_")
        and value.__module__.startswith(module.__name__)
    }


def _recorded(run) -> set[str]:
    """The operations of the history rows `run()` writes, across every audited table."""
    before = {
        m: m.history.order_by("-history_id").values_list("history_id", flat=True).first() or 0
        for m in HISTORIES
    }
    run()
    return {
        operation
        for model in HISTORIES
        for operation in model.history.filter(history_id__gt=before[model]).values_list(
            "operation", flat=True
        )
    }


@pytest.fixture
def funded(customer, support):
    services.balance_credit(actor=support, channel=ADMIN, customer=customer, store=None, amount=50)
    services.points_credit(actor=support, channel=ADMIN, customer=customer, points=50)
    return customer


CALLS = {
    # name: (service, run(fixtures) -> None); each writes history through that service alone.
    "merchant_create": lambda f: accounts.services.merchant_create(
        actor=f.support, channel=ADMIN, name="M"
    ),
    "store_create": lambda f: accounts.services.store_create(
        actor=f.support, channel=ADMIN, merchant=f.merchant, name="S"
    ),
    "customer_create": lambda f: accounts.services.customer_create(
        actor=f.support, channel=ADMIN, merchant=f.merchant, email="new@example.com"
    ),
    "customer_update": lambda f: accounts.services.customer_update(
        actor=f.support, channel=ADMIN, customer=f.customer, name="Renamed"
    ),
    "partner_create": lambda f: partners.services.partner_create(
        actor=f.support, channel=ADMIN, name="other", merchants=[f.merchant]
    ),
    "partner_rotate_credentials": lambda f: partners.services.partner_rotate_credentials(
        actor=f.support, channel=ADMIN, partner=f.partner, reason=REASON
    ),
    "stamp_card_create": lambda f: services.stamp_card_create(
        actor=f.support, channel=ADMIN, merchant=f.merchant, name="C", max_stamps=5
    ),
    "stamp_create": lambda f: services.stamp_create(
        actor=f.support,
        channel=ADMIN,
        card=f.card,
        customer=f.customer,
        start_date=f.stamp.start_date,
        end_date=f.stamp.end_date,
    ),
    "stamp_add": lambda f: services.stamp_add(actor=f.support, channel=ADMIN, stamp=f.stamp),
    "stamp_remove": lambda f: services.stamp_remove(
        actor=f.support, channel=ADMIN, stamp=f.full_stamp, reason=REASON
    ),
    "stamp_update": lambda f: services.stamp_update(
        actor=f.partner.user, channel=Channel.STAMP_API, stamp=f.stamp, memo="edited"
    ),
    "stamp_set_count": lambda f: services.stamp_set_count(
        actor=f.partner.user, channel=Channel.STAMP_API, stamp=f.full_stamp, count=1, reason=REASON
    ),
    "stamp_deactivate": lambda f: services.stamp_deactivate(
        actor=f.partner.user, channel=Channel.STAMP_API, stamp=f.stamp
    ),
    "balance_credit": lambda f: services.balance_credit(
        actor=f.support, channel=ADMIN, customer=f.customer, store=None, amount=5
    ),
    "balance_debit": lambda f: services.balance_debit(
        actor=f.support, channel=ADMIN, customer=f.funded, store=None, amount=5
    ),
    "balance_adjust": lambda f: services.balance_adjust(
        actor=f.support, channel=ADMIN, customer=f.customer, amount=5, reason=REASON
    ),
    "balance_update_cancel": lambda f: services.balance_update_cancel(
        actor=f.support, channel=ADMIN, balance_update=f.credit, reason=REASON
    ),
    "points_credit": lambda f: services.points_credit(
        actor=f.support, channel=ADMIN, customer=f.customer, points=5
    ),
    "points_adjust": lambda f: services.points_adjust(
        actor=f.support, channel=ADMIN, customer=f.customer, amount=5, reason=REASON
    ),
    "point_deduct": lambda f: deduct(f.partner, f.funded, 5, "r-2"),
    "point_deduction_revert": lambda f: services.point_deduction_revert(
        actor=f.support, channel=ADMIN, deduction=f.deduction, reason=REASON
    ),
    "point_deduction_confirm": lambda f: services.point_deduction_confirm(
        actor=f.partner.user,
        channel=Channel.POINTS_API,
        deduction=f.deduction,
        status="claimed",
        usd_amount=Decimal("1"),
    ),
}


class Fixtures:
    def __init__(self, **values):
        self.__dict__.update(values)


@pytest.fixture
def world(merchant, customer, card, stamp, support, partner, funded):
    full_stamp = factories.StampFactory(card=card, customer=customer, count=3)
    credit = services.balance_credit(
        actor=support, channel=ADMIN, customer=customer, store=None, amount=5
    )
    return Fixtures(
        merchant=merchant,
        customer=customer,
        funded=funded,
        card=card,
        stamp=stamp,
        full_stamp=full_stamp,
        support=support,
        partner=partner,
        credit=credit,
        deduction=deduct(partner, funded, 5, "r-1"),
    )


def test_every_service_of_every_app_is_checked():
    services_found = (
        _public_services(accounts.services)
        | _public_services(partners.services)
        | set(services.__all__) - {"REASON_MIN", "REASON_MAX"}
    )
    assert services_found == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_history_rows_a_service_writes_are_named_after_it(world, name):
    assert _recorded(lambda: CALLS[name](world)) == {name}


def test_an_update_that_also_sets_the_count_names_each_row_after_its_service(world, partner):
    recorded = _recorded(
        lambda: services.stamp_update(
            actor=partner.user,
            channel=Channel.STAMP_API,
            stamp=world.full_stamp,
            count=1,
            memo="fixed",
            reason=REASON,
        )
    )
    assert recorded == {"stamp_update", "stamp_set_count"}
