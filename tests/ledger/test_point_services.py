import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Customer
from ledger import errors, services
from ledger.models import PointTransaction
from loyalty.audit import Channel
from loyalty.errors import InvalidInput
from partners.services import partner_create
from tests.helpers import fund

pytestmark = pytest.mark.django_db

REDEMPTION = "0f8fad5b-d9cb-469f-a165-70867728950e"


def deduct(partner, customer, points=100, redemption_id=REDEMPTION):
    return services.point_deduct(
        actor=partner.user,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=customer,
        points=points,
        redemption_id=redemption_id,
    )


def test_deduct_lowers_points_and_records_the_redemption(customer, partner):
    fund(customer, points=1000)
    txn = deduct(partner, customer, 300)
    assert (txn.kind, txn.points, txn.points_after, txn.redemption_id) == (
        "deduct",
        -300,
        700,
        REDEMPTION,
    )
    assert txn.partner_transaction_id.startswith("txn_")
    assert Customer.objects.get(pk=customer.pk).points == 700
    row = txn.history.first()
    assert (row.history_user, row.channel, row.operation) == (
        partner.user,
        "points-api",
        "point_deduct",
    )


def test_duplicate_redemption_is_refused_with_the_original(customer, partner):
    fund(customer, points=1000)
    first = deduct(partner, customer, 300)
    with pytest.raises(errors.DuplicateRedemption) as caught:
        deduct(partner, customer, 300)
    assert caught.value.original == first
    assert Customer.objects.get(pk=customer.pk).points == 700


def test_the_same_redemption_id_under_another_credential_is_a_new_deduction(
    customer, partner, merchant
):
    other, _ = partner_create(
        actor=None, channel=Channel.COMMAND, name="Partner B", merchants=[merchant]
    )
    fund(customer, points=1000)
    deduct(partner, customer, 100)
    deduct(other, customer, 100)
    assert Customer.objects.get(pk=customer.pk).points == 800


def test_insufficient_points_leaves_no_trace_and_keeps_the_redemption_id(customer, partner):
    fund(customer, points=50)
    with pytest.raises(errors.InsufficientPoints) as caught:
        deduct(partner, customer, 51)
    assert "50" in caught.value.message
    assert PointTransaction.objects.filter(kind="deduct").count() == 0
    fund(customer, points=10)
    assert deduct(partner, customer, 51).points_after == 9


@pytest.mark.parametrize("redemption_id", ["", "x" * 101, None, 5])
def test_redemption_id_must_be_a_short_string(customer, partner, redemption_id):
    fund(customer, points=10)
    with pytest.raises(InvalidInput):
        deduct(partner, customer, 1, redemption_id)


def test_revert_restores_points_once(customer, partner):
    fund(customer, points=1000)
    txn = deduct(partner, customer, 400)
    revert = services.point_deduction_revert(
        actor=partner.user, channel=Channel.POINTS_API, deduction=txn, reason="user canceled"
    )
    assert (revert.kind, revert.points, revert.points_after, revert.reverts) == (
        "revert",
        400,
        1000,
        txn,
    )
    assert revert.partner_transaction_id.startswith("rvt_")
    assert revert.history.first().history_change_reason == "user canceled"
    with pytest.raises(errors.AlreadyReverted) as caught:
        services.point_deduction_revert(
            actor=partner.user, channel=Channel.POINTS_API, deduction=txn
        )
    assert caught.value.revert == revert
    assert Customer.objects.get(pk=customer.pk).points == 1000


def test_only_a_deduction_can_be_reverted(customer, support):
    fund(customer, points=10)
    credit = PointTransaction.objects.get(customer=customer)
    with pytest.raises(errors.NotADeduction):
        services.point_deduction_revert(
            actor=support, channel=Channel.ADMIN, deduction=credit, reason="nope"
        )


def test_staff_revert_needs_a_reason(customer, partner, support):
    fund(customer, points=10)
    txn = deduct(partner, customer, 5)
    with pytest.raises(errors.ReasonRequired):
        services.point_deduction_revert(actor=support, channel=Channel.ADMIN, deduction=txn)
    assert Customer.objects.get(pk=customer.pk).points == 5


def confirm(partner, txn, status):
    moment = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    return services.point_deduction_confirm(
        actor=partner.user,
        channel=Channel.POINTS_API,
        deduction=txn,
        status=status,
        usd_amount=Decimal("1.5"),
        ygg_amount=Decimal("10.25"),
        price_ygg_usd=Decimal("0.146"),
        txn_confirmed=True,
        txn_hash="0xabc",
        initial_at=moment,
        pending_at=moment,
        claimed_at=moment if status == "claimed" else None,
        reverted_at=moment if status == "reverted" else None,
    )


def test_confirm_claimed_records_the_outcome_and_moves_no_points(customer, partner):
    fund(customer, points=100)
    txn = deduct(partner, customer, 30)
    confirmed = confirm(partner, txn, "claimed")
    assert (confirmed.confirmation_status, confirmed.txn_hash, confirmed.needs_attention) == (
        "claimed",
        "0xabc",
        False,
    )
    assert Customer.objects.get(pk=customer.pk).points == 70
    assert confirmed.history.first().operation == "point_deduction_confirm"


def test_confirm_reverted_without_a_revert_is_flagged(customer, partner):
    fund(customer, points=100)
    txn = deduct(partner, customer, 30)
    assert confirm(partner, txn, "reverted").needs_attention is True
    assert Customer.objects.get(pk=customer.pk).points == 70


def test_confirm_reverted_after_a_revert_is_not_flagged(customer, partner):
    fund(customer, points=100)
    txn = deduct(partner, customer, 30)
    services.point_deduction_revert(actor=partner.user, channel=Channel.POINTS_API, deduction=txn)
    assert confirm(partner, txn, "reverted").needs_attention is False


def test_confirm_refuses_an_unknown_status(customer, partner):
    fund(customer, points=100)
    txn = deduct(partner, customer, 30)
    with pytest.raises(InvalidInput):
        confirm(partner, txn, "pending")


def test_adjust_points_both_ways_with_reason(customer, support):
    fund(customer, points=10)
    up = services.points_adjust(
        actor=support, channel=Channel.STAFF_API, customer=customer, amount=15, reason="bonus"
    )
    down = services.points_adjust(
        actor=support, channel=Channel.STAFF_API, customer=customer, amount=-20, reason="fix"
    )
    assert (up.kind, up.points_after, down.points, down.points_after) == ("adjust", 25, -20, 5)
    with pytest.raises(errors.InsufficientPoints):
        services.points_adjust(
            actor=support, channel=Channel.STAFF_API, customer=customer, amount=-6, reason="fix"
        )
    assert Customer.objects.get(pk=customer.pk).points == 5


def test_a_repeat_after_the_points_ran_out_is_still_a_duplicate(customer, partner):
    fund(customer, points=100)
    first = deduct(partner, customer, 100)
    with pytest.raises(errors.DuplicateRedemption) as caught:
        deduct(partner, customer, 100)
    assert caught.value.original == first
