"""Events of the admin's corrective actions: staff actor, channel admin, the reason, the
original on cancel and revert; confirmation pages and previews emit nothing."""

import pytest

from accounts.models import Customer
from ledger.models import BalanceUpdate, Event, PointTransaction, Stamp
from tests import factories
from tests.admin.utils import confirm_action, credit, deduct, post_action
from tests.helpers import fund

pytestmark = pytest.mark.django_db

REASON = "Customer was double-scanned at the till"


def admin_events(customer) -> list[Event]:
    return list(
        Event.objects.filter(customer=customer, channel="admin").order_by("customer_sequence")
    )


def test_every_admin_correction_emits_its_event(support_client, card, customer, partner):
    fund(customer, points=100)
    update = credit(customer, 30)
    deduction = deduct(partner, customer, 40, "redeem-1")
    stamp = factories.StampFactory(card=card, customer=customer, count=2)
    before = Event.objects.count()
    # Confirmation pages and previews first: they change nothing.
    post_action(support_client, Stamp, "deduct_stamp", [stamp])
    post_action(support_client, Customer, "adjust_points", [customer], preview="1", amount="5")
    assert Event.objects.count() == before

    for model, action, objects, extra in [
        (Stamp, "deduct_stamp", [stamp], {}),
        (BalanceUpdate, "cancel_balance_update", [update], {}),
        (PointTransaction, "revert_points", [deduction], {}),
        (Customer, "adjust_balance", [customer], {"amount": "7"}),
        (Customer, "adjust_points", [customer], {"amount": "-2"}),
    ]:
        response = confirm_action(support_client, model, action, objects, REASON, **extra)
        assert response.status_code == 302, action
    events = admin_events(customer)
    assert [e.type for e in events] == [
        "stamp.removed",
        "balance.canceled",
        "points.reverted",
        "balance.adjusted",
        "points.adjusted",
    ]
    assert {(e.actor_type, e.actor_name, e.reason) for e in events} == {
        ("staff", "support-1", REASON)
    }
    removed, canceled, reverted, adjusted, points = events
    assert (removed.data["count_before"], removed.data["stamp"]["count"]) == (2, 1)
    assert canceled.data["original"] == {**canceled.data["balance_update"], "status": "Success"}
    assert canceled.data["balance"] == 0
    assert reverted.data["original"]["id"] == deduction.pk
    assert reverted.data["points"] == 100
    assert adjusted.data["balance_update"]["amount"] == 7
    assert points.data["point_transaction"]["points"] == -2
    assert points.customer_sequence == Customer.objects.get(pk=customer.pk).event_sequence


def test_the_customer_page_shows_its_latest_events_read_only(auditor_client, customer):
    fund(customer, points=5)
    event = Event.objects.get(customer=customer)
    page = auditor_client.get(f"/admin/accounts/customer/{customer.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Latest events" in html and event.event_id in html and "points.credited" in html
