"""The outbox: every service writes exactly one event with its change, in its transaction,
with the contract's data, actor, channel, reason and a gap-free customer_sequence; refusals
and previews write none."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ledger import errors, events, services
from ledger.models import Event
from loyalty.audit import Channel
from loyalty.preview import dry_run
from loyalty.request_id import _request_id
from tests import factories
from tests.helpers import fund

pytestmark = pytest.mark.django_db


def only_event(**filters) -> Event:
    (event,) = Event.objects.filter(**filters)
    return event


def last_event(customer) -> Event:
    return Event.objects.filter(customer=customer).order_by("-customer_sequence").first()


def test_balance_events_carry_the_update_the_balance_and_the_original(support, customer, store):
    credit = services.balance_credit(
        actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=30
    )
    event = only_event(type="balance.credited")
    assert event.data == {
        "balance_update": {
            "id": credit.pk,
            "effect": "credit",
            "amount": 30,
            "status": "Success",
            "balance_after": 30,
        },
        "balance": 30,
    }
    assert (event.actor_type, event.actor_name, event.channel) == ("system", "system", "command")
    assert (event.customer_id, event.customer_sequence, event.reason) == (customer.pk, 1, None)
    assert event.merchant_id == customer.merchant_id
    assert event.event_id.startswith("evt_") and len(event.event_id) == 36

    services.balance_debit(
        actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=5
    )
    assert only_event(type="balance.debited").data["balance"] == 25
    services.balance_adjust(
        actor=support, channel=Channel.STAFF_API, customer=customer, amount=-4, reason="typo fix"
    )
    adjusted = only_event(type="balance.adjusted")
    assert adjusted.data["balance_update"]["effect"] == "debit"
    assert (adjusted.actor_type, adjusted.actor_name, adjusted.reason) == (
        "staff",
        "support-1",
        "typo fix",
    )
    assert adjusted.customer_sequence == 3


def test_cancel_event_shows_the_update_now_and_as_it_was(support, customer, store):
    fund(customer, balance=50, store=store)
    debit = services.balance_debit(
        actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=20
    )
    services.balance_update_cancel(
        actor=support, channel=Channel.ADMIN, balance_update=debit, reason="wrong customer"
    )
    event = only_event(type="balance.canceled")
    as_it_was = {
        "id": debit.pk,
        "effect": "debit",
        "amount": 20,
        "status": "Success",
        "balance_after": 30,
    }
    assert event.data == {
        "balance_update": {**as_it_was, "status": "Canceled"},
        "balance": 50,
        "original": as_it_was,
    }
    assert (event.channel, event.actor_name, event.reason) == (
        "admin",
        "support-1",
        "wrong customer",
    )
    assert event.customer_sequence == 3
    assert Event.objects.filter(type__startswith="balance.").count() == 3  # one per operation


def test_points_events_and_the_revert_carries_the_deduction(partner, support, customer):
    credit = services.points_credit(
        actor=None, channel=Channel.COMMAND, customer=customer, points=100
    )
    assert only_event(type="points.credited").data == {
        "point_transaction": {
            "id": credit.pk,
            "kind": "credit",
            "points": 100,
            "points_after": 100,
            "redemption_id": "",
            "partner_transaction_id": credit.partner_transaction_id,
            "reverts": None,
        },
        "points": 100,
    }
    deduction = services.point_deduct(
        actor=partner.user,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=customer,
        points=40,
        redemption_id="r-1",
    )
    deducted = only_event(type="points.deducted")
    assert (deducted.actor_type, deducted.actor_name, deducted.channel) == (
        "partner",
        "Partner A",
        "points-api",
    )
    assert deducted.data["points"] == 60
    revert = services.point_deduction_revert(
        actor=support, channel=Channel.STAFF_API, deduction=deduction, reason="partner asked"
    )
    reverted = only_event(type="points.reverted")
    assert reverted.data == {
        "point_transaction": {
            "id": revert.pk,
            "kind": "revert",
            "points": 40,
            "points_after": 100,
            "redemption_id": "r-1",
            "partner_transaction_id": revert.partner_transaction_id,
            "reverts": deduction.pk,
        },
        "points": 100,
        "original": {
            "id": deduction.pk,
            "kind": "deduct",
            "points": -40,
            "points_after": 60,
            "redemption_id": "r-1",
            "partner_transaction_id": deduction.partner_transaction_id,
            "reverts": None,
        },
    }
    assert reverted.reason == "partner asked"
    services.points_adjust(
        actor=support, channel=Channel.STAFF_API, customer=customer, amount=5, reason="goodwill"
    )
    assert only_event(type="points.adjusted").data["points"] == 105
    services.point_deduction_confirm(
        actor=partner.user, channel=Channel.POINTS_API, deduction=deduction, status="claimed"
    )
    confirmed = only_event(type="points.confirmed")
    assert confirmed.data["status"] == "claimed"
    assert confirmed.data["point_transaction"]["id"] == deduction.pk
    assert list(
        Event.objects.filter(customer=customer)
        .order_by("customer_sequence")
        .values_list("customer_sequence", "type")
    ) == [
        (1, "points.credited"),
        (2, "points.deducted"),
        (3, "points.reverted"),
        (4, "points.adjusted"),
        (5, "points.confirmed"),
    ]


def test_stamp_events_carry_the_stamp_and_the_count_before(partner, support, card, customer):
    today = timezone.localdate()
    stamp = services.stamp_create(
        actor=partner.user,
        channel=Channel.STAMP_API,
        card=card,
        customer=customer,
        start_date=today,
        end_date=today + dt.timedelta(days=30),
    )
    created = only_event(type="stamp.created")
    assert created.data == {
        "stamp": {
            "id": stamp.pk,
            "card": card.pk,
            "count": 0,
            "max_stamps": 10,
            "active": True,
            "redeemed": False,
        },
        "count_before": 0,
    }
    assert (created.actor_type, created.actor_name) == ("partner", "Partner A")
    services.stamp_add(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    services.stamp_add(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    added = Event.objects.filter(type="stamp.added").order_by("id").last()
    assert (added.data["stamp"]["count"], added.data["count_before"]) == (2, 1)
    services.stamp_remove(
        actor=support, channel=Channel.STAFF_API, stamp=stamp, reason="double tap"
    )
    removed = only_event(type="stamp.removed")
    assert (removed.data["stamp"]["count"], removed.data["count_before"], removed.reason) == (
        1,
        2,
        "double tap",
    )
    services.stamp_update(
        actor=partner.user, channel=Channel.STAMP_API, stamp=stamp, count=5, redeemed=True
    )
    updated = only_event(type="stamp.updated")
    assert updated.data["count_before"] == 1
    assert updated.data["stamp"] | {"id": 0} == {
        "id": 0,
        "card": card.pk,
        "count": 5,
        "max_stamps": 10,
        "active": True,
        "redeemed": True,
    }
    # An update that changes nothing is no change, so no event.
    services.stamp_update(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp, count=5)
    assert Event.objects.filter(type="stamp.updated").count() == 1
    services.stamp_deactivate(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    deleted = only_event(type="stamp.deleted")
    assert deleted.data["stamp"]["active"] is False
    assert deleted.data["count_before"] == 5
    assert list(
        Event.objects.filter(customer=customer)
        .order_by("id")
        .values_list("customer_sequence", flat=True)
    ) == [1, 2, 3, 4, 5, 6]
    customer.refresh_from_db()
    assert customer.event_sequence == 6


def test_request_id_is_the_requests(customer):
    token = _request_id.set("req-42")
    try:
        services.points_credit(actor=None, channel=Channel.COMMAND, customer=customer, points=1)
    finally:
        _request_id.reset(token)
    assert only_event().request_id == "req-42"


def test_refusals_write_no_event_and_leave_no_gap(partner, support, customer, store, card):
    fund(customer, balance=10, points=10, store=store)
    stamp = factories.StampFactory(card=card, customer=customer, count=0)
    before = Event.objects.count()
    refusals = [
        lambda: services.balance_debit(
            actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=11
        ),
        lambda: services.point_deduct(
            actor=partner.user,
            channel=Channel.POINTS_API,
            partner=partner,
            customer=customer,
            points=11,
            redemption_id="r-x",
        ),
        lambda: services.stamp_remove(
            actor=support, channel=Channel.STAFF_API, stamp=stamp, reason="nothing to take"
        ),
        lambda: services.balance_adjust(
            actor=support, channel=Channel.STAFF_API, customer=customer, amount=-11, reason="no"
        ),
    ]
    for refusal in refusals:
        with pytest.raises(errors.DomainError):
            refusal()
    assert Event.objects.count() == before
    services.points_credit(actor=None, channel=Channel.COMMAND, customer=customer, points=1)
    assert last_event(customer).customer_sequence == 3  # funded twice, then this one


def test_a_duplicate_redemption_writes_no_second_event(partner, customer):
    fund(customer, points=100)
    kwargs = dict(
        actor=partner.user,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=customer,
        points=10,
        redemption_id="r-dup",
    )
    services.point_deduct(**kwargs)
    with pytest.raises(errors.DuplicateRedemption):
        services.point_deduct(**kwargs)
    assert Event.objects.filter(type="points.deducted").count() == 1


def test_previews_write_no_event(support, customer):
    fund(customer, points=10)
    before = Event.objects.count()
    dry_run(
        lambda: services.points_adjust(
            actor=support, channel=Channel.STAFF_API, customer=customer, amount=3, reason="peek"
        )
    )
    assert Event.objects.count() == before
    customer.refresh_from_db()
    assert customer.event_sequence == 1


def test_every_type_is_in_the_contracts_list():
    assert (
        sorted(
            [
                "stamp.created",
                "stamp.added",
                "stamp.removed",
                "stamp.updated",
                "stamp.deleted",
                "balance.credited",
                "balance.debited",
                "balance.adjusted",
                "balance.canceled",
                "points.credited",
                "points.deducted",
                "points.adjusted",
                "points.reverted",
                "points.confirmed",
                "approval.requested",
                "approval.approved",
                "approval.rejected",
                "approval.canceled",
                "approval.expired",
                "approval.failed",
                "batch.completed",
            ]
        )
        == events.EVENT_TYPES
    )


def test_commands_emit_events_as_the_system(capsys):
    from django.core.management import call_command

    from ledger import reconcile

    call_command("seed_demo")
    seeded = list(Event.objects.all())
    assert {e.type for e in seeded} >= {
        "balance.credited",
        "points.credited",
        "stamp.created",
        "stamp.added",
    }
    assert {(e.channel, e.actor_type, e.actor_name) for e in seeded} == {
        ("command", "system", "system")
    }
    assert reconcile.run()[0] == []
    call_command("seed_demo")  # a second run reuses what the first made
    assert Event.objects.count() == len(seeded)


def test_every_operation_the_outbox_maps_is_a_service_name():
    # The outbox takes an event's type from the audited operation, which is the service's
    # name: a key that names no service (say, an operation renamed without its entry here)
    # would turn that service's every call into an error.
    # An approval's steps are ledger.approvals' operations; a batch's, ledger.batches'.
    from ledger import approvals, batches, services

    named = {name for name in events.TYPES if callable(getattr(services, name, None))}
    assert set(events.TYPES) - named == set(approvals.OPERATIONS) | {"batch_complete"}
    assert "batch_complete" in batches.OPERATIONS
