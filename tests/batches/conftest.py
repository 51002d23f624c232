"""Correction batches fixtures: a merchant with customers, stamps, updates and deductions to
correct, the staff API's clients (real tokens), supervisors."""

from __future__ import annotations

import pytest

from ledger import services
from loyalty.audit import Channel
from tests import factories
from tests.api.conftest import (  # noqa: F401  (fixtures)
    StaffClient,
    _fast_password_hashing,
    api_auditor,
    api_support,
    token_for,
)
from tests.approvals.conftest import (  # noqa: F401  (fixtures)
    api_superuser,
    api_supervisor,
    superuser,
    supervisor,
)
from tests.helpers import fund


def csv_bytes(*lines: str, bom: bool = False) -> bytes:
    text = "\r\n".join(lines) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


@pytest.fixture
def ledger(merchant, store, card):
    """Two customers with balance and points, a stamp with 3 stamps, a credit to cancel and a
    deduction to revert; and another merchant's customer."""
    alice = fund(
        factories.CustomerFactory(merchant=merchant, member_id="M-1", email="alice@example.com"),
        balance=100,
        points=100,
        store=store,
    )
    bob = fund(
        factories.CustomerFactory(merchant=merchant, member_id="M-2", wallet_address="0xb0b"),
        balance=50,
        points=50,
        store=store,
    )
    stamp = factories.StampFactory(card=card, customer=alice)
    for _ in range(3):
        services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=stamp)
    credit = services.balance_credit(
        actor=None, channel=Channel.COMMAND, customer=bob, store=store, amount=20
    )
    partner = factories_partner(merchant)
    deduction = services.point_deduct(
        actor=partner.user,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=alice,
        points=30,
        redemption_id="r-1",
    )
    other = factories.MerchantFactory()
    stranger = fund(
        factories.CustomerFactory(merchant=other, member_id="M-1", email="x@example.com"),
        points=10,
    )
    for customer in (alice, bob):
        customer.refresh_from_db()
    return {
        "alice": alice,
        "bob": bob,
        "stamp": stamp,
        "credit": credit,
        "deduction": deduction,
        "stranger": stranger,
        "other": other,
        "partner": partner,
    }


def factories_partner(merchant):
    from partners.services import partner_create

    partner, _credentials = partner_create(
        actor=None, channel=Channel.COMMAND, name="Partner B", merchants=[merchant]
    )
    return partner
