import datetime as dt

import pytest
from django.utils import timezone

from ledger import errors, services
from ledger.models import Stamp
from loyalty.audit import Channel, UnattributedChange
from loyalty.errors import InvalidInput
from tests import factories

pytestmark = pytest.mark.django_db


def last_history(stamp):
    return Stamp.history.filter(id=stamp.pk).order_by("-history_id").first()


def test_create_copies_card_maximum_and_records_creation(card, customer, support):
    today = timezone.localdate()
    stamp = services.stamp_create(
        actor=support,
        channel=Channel.ADMIN,
        card=card,
        customer=customer,
        start_date=today,
        end_date=today + dt.timedelta(days=10),
        memo="welcome",
    )
    assert (stamp.count, stamp.max_stamps, stamp.merchant_id) == (0, 10, card.merchant_id)
    row = last_history(stamp)
    assert (row.history_type, row.history_user, row.channel, row.operation) == (
        "+",
        support,
        "admin",
        "stamp_create",
    )


def test_create_refuses_a_customer_of_another_merchant(card):
    stranger = factories.CustomerFactory()
    today = timezone.localdate()
    with pytest.raises(InvalidInput):
        services.stamp_create(
            actor=None,
            channel=Channel.COMMAND,
            card=card,
            customer=stranger,
            start_date=today,
            end_date=today,
        )
    assert not Stamp.objects.exists()


def test_create_refuses_end_before_start(card, customer):
    today = timezone.localdate()
    with pytest.raises(InvalidInput):
        services.stamp_create(
            actor=None,
            channel=Channel.COMMAND,
            card=card,
            customer=customer,
            start_date=today,
            end_date=today - dt.timedelta(days=1),
        )


def test_add_increments_and_records_actor_and_channel(stamp, partner):
    services.stamp_add(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    stamp.refresh_from_db()
    assert stamp.count == 1
    row = last_history(stamp)
    assert (row.history_type, row.history_user, row.channel, row.operation, row.count) == (
        "~",
        partner.user,
        "stamp-api",
        "stamp_add",
        1,
    )
    assert row.prev_record.count == 0


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"active": False}, errors.StampInactive),
        (
            {"start_date": dt.date(2000, 1, 1), "end_date": dt.date(2000, 1, 2)},
            errors.StampOutOfPeriod,
        ),
        ({"redeemed": True}, errors.RewardAlreadyRedeemed),
        ({"count": 10}, errors.StampAtMax),
    ],
)
def test_add_refusals_change_nothing(card, customer, changes, error):
    stamp = factories.StampFactory(card=card, customer=customer, **changes)
    versions = Stamp.history.filter(id=stamp.pk).count()
    with pytest.raises(error):
        services.stamp_add(actor=None, channel=Channel.STAMP_API, stamp=stamp)
    stamp_after = Stamp.objects.get(pk=stamp.pk)
    assert stamp_after.count == stamp.count
    assert Stamp.history.filter(id=stamp.pk).count() == versions


def test_remove_decrements_and_records_reason(card, customer, support):
    stamp = factories.StampFactory(card=card, customer=customer, count=3)
    services.stamp_remove(
        actor=support, channel=Channel.STAFF_API, stamp=stamp, reason="Added twice by mistake"
    )
    stamp.refresh_from_db()
    assert stamp.count == 2
    row = last_history(stamp)
    assert (row.history_user, row.channel, row.history_change_reason, row.operation) == (
        support,
        "staff-api",
        "Added twice by mistake",
        "stamp_remove",
    )
    delta = row.diff_against(row.prev_record)
    assert [(c.field, c.old, c.new) for c in delta.changes] == [("count", 3, 2)]


def test_remove_at_zero_changes_nothing_and_raises_count_zero(stamp):
    with pytest.raises(errors.StampCountZero):
        services.stamp_remove(actor=None, channel=Channel.STAMP_API, stamp=stamp)
    assert Stamp.objects.get(pk=stamp.pk).count == 0
    assert Stamp.history.filter(id=stamp.pk).count() == 1


@pytest.mark.parametrize("reason", ["", "  ", "ab", "x" * 501])
def test_staff_remove_needs_a_reason_of_3_to_500_characters(card, customer, support, reason):
    stamp = factories.StampFactory(card=card, customer=customer, count=3)
    with pytest.raises(errors.ReasonRequired):
        services.stamp_remove(actor=support, channel=Channel.ADMIN, stamp=stamp, reason=reason)
    assert Stamp.objects.get(pk=stamp.pk).count == 3


def test_partner_remove_may_omit_the_reason(card, customer, partner):
    stamp = factories.StampFactory(card=card, customer=customer, count=1)
    services.stamp_remove(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    assert Stamp.objects.get(pk=stamp.pk).count == 0


def test_daily_cap_refuses_the_next_partner_removal_but_not_staff(card, customer, partner, support):
    stamp = factories.StampFactory(card=card, customer=customer, count=10)
    for _ in range(3):
        services.stamp_remove(
            actor=partner.user, channel=Channel.STAMP_API, stamp=stamp, daily_cap=3
        )
    with pytest.raises(errors.CorrectionLimitReached):
        services.stamp_remove(
            actor=partner.user, channel=Channel.STAMP_API, stamp=stamp, daily_cap=3
        )
    assert Stamp.objects.get(pk=stamp.pk).count == 7
    # Staff corrections do not count toward the partner cap, nor are they capped.
    services.stamp_remove(actor=support, channel=Channel.ADMIN, stamp=stamp, reason="claim #12")
    assert Stamp.objects.get(pk=stamp.pk).count == 6


def test_update_setting_count_is_an_audited_correction(card, customer, partner):
    stamp = factories.StampFactory(card=card, customer=customer, count=5)
    services.stamp_update(
        actor=partner.user,
        channel=Channel.STAMP_API,
        stamp=stamp,
        count=2,
        memo="fixed",
        reason="double scan",
    )
    row = last_history(stamp)
    assert (row.count, row.memo, row.operation, row.history_change_reason) == (
        2,
        "fixed",
        "stamp_set_count",
        "double scan",
    )


def test_update_counts_toward_the_daily_cap(card, customer, partner):
    stamp = factories.StampFactory(card=card, customer=customer, count=5)
    services.stamp_update(
        actor=partner.user, channel=Channel.STAMP_API, stamp=stamp, count=4, daily_cap=1
    )
    with pytest.raises(errors.CorrectionLimitReached):
        services.stamp_remove(
            actor=partner.user, channel=Channel.STAMP_API, stamp=stamp, daily_cap=1
        )


def test_update_refuses_count_above_maximum(card, customer):
    stamp = factories.StampFactory(card=card, customer=customer, count=5)
    with pytest.raises(errors.StampAtMax):
        services.stamp_update(actor=None, channel=Channel.STAMP_API, stamp=stamp, count=11)
    assert Stamp.objects.get(pk=stamp.pk).count == 5


def test_update_refuses_dates_out_of_order(stamp):
    with pytest.raises(InvalidInput):
        services.stamp_update(
            actor=None, channel=Channel.STAMP_API, stamp=stamp, end_date=dt.date(2000, 1, 1)
        )


def test_update_without_changes_writes_no_history(stamp):
    services.stamp_update(actor=None, channel=Channel.STAMP_API, stamp=stamp, memo=stamp.memo)
    assert Stamp.history.filter(id=stamp.pk).count() == 1


def test_deactivate_hides_the_stamp_and_keeps_history(stamp, partner):
    services.stamp_deactivate(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    stamp.refresh_from_db()
    assert (stamp.active, stamp.deleted_at is not None) == (False, True)
    assert last_history(stamp).operation == "stamp_deactivate"
    with pytest.raises(errors.StampNotFound):
        services.stamp_add(actor=None, channel=Channel.STAMP_API, stamp=stamp)
    with pytest.raises(errors.StampNotFound):
        services.stamp_deactivate(actor=None, channel=Channel.STAMP_API, stamp=stamp)


def test_a_save_outside_a_service_is_refused(stamp):
    stamp.count = 3
    with pytest.raises(UnattributedChange):
        stamp.save()
