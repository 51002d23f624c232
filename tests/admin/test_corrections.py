"""Corrective actions through the admin URLs: confirmation, reason, effect, history, refusals."""

import pytest

from accounts.models import Customer
from ledger import history, services
from ledger.admin import corrections as admin_corrections
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel
from tests import factories
from tests.admin.utils import (
    confirm_action,
    confirm_object,
    credit,
    debit,
    deduct,
    messages_of,
    post_action,
    texts_of,
)
from tests.helpers import fund

pytestmark = pytest.mark.django_db

REASON = "Customer was double-scanned at the till"


def outcomes(response):
    return [(o.obj.pk, o.now, o.after, o.refusal) for o in response.context["outcomes"]]


def latest_version(model, pk):
    return history.object_history(model, pk)[0]


def assert_attributed(version, *, operation, reason=REASON, actor="support-1"):
    assert (version.actor, version.channel, version.reason, version.operation) == (
        actor,
        "admin",
        reason,
        operation,
    )


# --- remove one stamp ----------------------------------------------------------------------


@pytest.fixture
def stamps(card, customer):
    return [factories.StampFactory(card=card, customer=customer, count=n) for n in (3, 0, 1)]


def test_remove_stamp_confirmation_lists_every_stamp_now_and_after_and_changes_nothing(
    support_client, stamps
):
    response = post_action(support_client, Stamp, "deduct_stamp", stamps)

    assert response.status_code == 200
    assert "admin/backoffice/correction_confirmation.html" in [t.name for t in response.templates]
    assert outcomes(response) == [
        (stamps[0].pk, "3/10", "2/10", None),
        (stamps[1].pk, "0/10", None, "The stamp count is already 0."),
        (stamps[2].pk, "1/10", "0/10", None),
    ]
    html = response.content.decode()
    assert 'name="reason"' in html and 'name="post" value="Yes, I\u2019m sure"' in html
    assert html.count('name="_selected_action"') == 3
    assert "2 will change, 1 will be refused" in html
    assert [s.count for s in Stamp.objects.order_by("pk")] == [3, 0, 1]
    assert Stamp.history.count() == 3  # the preview left no history


@pytest.mark.parametrize("reason", ["", "   ", "ab", "x" * 501])
def test_remove_stamp_without_a_valid_reason_shows_the_page_again_and_changes_nothing(
    support_client, stamps, reason
):
    response = confirm_action(support_client, Stamp, "deduct_stamp", stamps[:1], reason)

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    stamps[0].refresh_from_db()
    assert stamps[0].count == 3
    assert Stamp.history.filter(id=stamps[0].pk).count() == 1


def test_remove_stamp_applies_to_each_and_reports_what_was_done_and_refused(support_client, stamps):
    response = confirm_action(support_client, Stamp, "deduct_stamp", stamps, REASON)

    assert response.status_code == 302
    assert [s.count for s in Stamp.objects.order_by("pk")] == [2, 0, 0]
    done, _ = messages_of(response)
    first, last = (f"/admin/ledger/stamp/{s.pk}/change/" for s in (stamps[0], stamps[2]))
    assert done == (
        "Removed one stamp from 2 stamps:<ul>"
        f'<li><a href="{first}">{stamps[0]}</a>: 3/10 → 2/10</li>'
        f'<li><a href="{last}">{stamps[2]}</a>: 1/10 → 0/10</li></ul>'
    )
    assert texts_of(response)[1] == f"Left {stamps[1]} unchanged: The stamp count is already 0."
    version = latest_version(Stamp, stamps[0].pk)
    assert_attributed(version, operation="stamp_remove")
    assert [(c.field, c.old, c.new) for c in version.changes] == [("count", 3, 2)]
    assert Stamp.history.filter(id=stamps[1].pk).count() == 1  # refused: no new version


def test_remove_stamp_button_on_the_stamp_page_confirms_then_returns_to_the_page(
    support_client, stamps
):
    stamp = stamps[0]
    url = f"/admin/ledger/stamp/{stamp.pk}/correction/deduct_stamp/"
    assert url in support_client.get(f"/admin/ledger/stamp/{stamp.pk}/change/").content.decode()

    page = support_client.get(url)
    assert page.status_code == 200 and outcomes(page) == [(stamp.pk, "3/10", "2/10", None)]
    assert 'name="_selected_action"' not in page.content.decode()
    token = page.context["preview_token"]
    refused = support_client.post(url, {"post": "yes", "reason": "", "preview_token": token})
    assert refused.status_code == 200 and refused.context["form"].errors["reason"]

    response = support_client.post(url, {"post": "yes", "reason": REASON, "preview_token": token})

    assert response.status_code == 302
    assert response["Location"] == f"/admin/ledger/stamp/{stamp.pk}/change/"
    stamp.refresh_from_db()
    assert stamp.count == 2
    assert_attributed(latest_version(Stamp, stamp.pk), operation="stamp_remove")


# --- cancel balance updates ----------------------------------------------------------------


@pytest.fixture
def updates(merchant, store):
    alice = factories.CustomerFactory(merchant=merchant)
    bob = factories.CustomerFactory(merchant=merchant)
    credit(alice, 100, store)
    canceled = credit(alice, 5, store)
    services.balance_update_cancel(
        actor=None, channel=Channel.COMMAND, balance_update=canceled, reason="test setup"
    )
    a = credit(alice, 20, store)  # alice: 120
    b = debit(alice, 30, store)  # alice: 90
    c = credit(bob, 50, store)
    debit(bob, 40, store)  # bob spent 40 of the 50: canceling the credit would go below 0
    return {"alice": alice, "bob": bob, "a": a, "b": b, "c": c, "canceled": canceled}


def test_cancel_confirmation_shows_running_values_and_each_refusal(support_client, updates):
    u = updates
    selection = [u["canceled"], u["a"], u["b"], u["c"]]

    response = post_action(support_client, BalanceUpdate, "cancel_balance_update", selection)

    assert response.status_code == 200
    assert outcomes(response) == [
        (
            u["canceled"].pk,
            "Canceled; balance 90",
            None,
            "This balance update has already been canceled.",
        ),
        (u["a"].pk, "Success; balance 90", "Canceled; balance 70", None),
        (u["b"].pk, "Success; balance 70", "Canceled; balance 100", None),
        (
            u["c"].pk,
            "Success; balance 10",
            None,
            "Cannot cancel: the customer has 10 left of this credit of 50; the balance may "
            "not go below 0.",
        ),
    ]
    assert BalanceUpdate.objects.filter(status="Canceled").count() == 1


def test_cancel_without_reason_is_refused_and_changes_nothing(support_client, updates):
    response = confirm_action(
        support_client, BalanceUpdate, "cancel_balance_update", [updates["a"]], ""
    )

    assert response.status_code == 200 and response.context["form"].errors["reason"]
    updates["a"].refresh_from_db()
    assert updates["a"].status == "Success"


def test_cancel_applies_to_each_records_history_and_reports_refusals(support_client, updates):
    u = updates
    selection = [u["canceled"], u["a"], u["b"], u["c"]]

    response = confirm_action(
        support_client, BalanceUpdate, "cancel_balance_update", selection, REASON
    )

    assert response.status_code == 302
    statuses = dict(BalanceUpdate.objects.values_list("pk", "status"))
    assert (statuses[u["a"].pk], statuses[u["b"].pk], statuses[u["c"].pk]) == (
        "Canceled",
        "Canceled",
        "Success",
    )
    u["alice"].refresh_from_db()
    u["bob"].refresh_from_db()
    assert (u["alice"].balance, u["bob"].balance) == (100, 10)
    done, refused = texts_of(response)
    assert done == (
        f"Canceled 2 balance updates:{u['a']}: Success; balance 90 → Canceled; balance 70"
        f"{u['b']}: Success; balance 70 → Canceled; balance 100"
    )
    assert refused.startswith("Refused for 2 balance updates, left unchanged:")
    assert "already been canceled" in refused and "may not go below 0" in refused
    version = latest_version(BalanceUpdate, u["a"].pk)
    assert_attributed(version, operation="balance_update_cancel")
    assert {c.field: (c.old, c.new) for c in version.changes}["status"] == ("Success", "Canceled")
    customer_version = latest_version(Customer, u["alice"].pk)
    assert_attributed(customer_version, operation="balance_update_cancel")
    assert [(c.field, c.old, c.new) for c in customer_version.changes] == [("balance", 70, 100)]


# --- revert point deductions ---------------------------------------------------------------


@pytest.fixture
def point_rows(customer, partner):
    fund(customer, points=100)
    credit_row = PointTransaction.objects.get(customer=customer, kind="credit")
    d1 = deduct(partner, customer, 40, "redeem-1")
    d2 = deduct(partner, customer, 10, "redeem-2")
    services.point_deduction_revert(actor=partner.user, channel=Channel.POINTS_API, deduction=d2)
    return credit_row, d1, d2


def test_revert_confirmation_lists_each_transaction_with_points_now_and_after(
    support_client, point_rows
):
    credit_row, d1, d2 = point_rows

    response = post_action(support_client, PointTransaction, "revert_points", [credit_row, d1, d2])

    assert outcomes(response) == [
        (credit_row.pk, "60 points", None, "Only a point deduction can be reverted."),
        (d1.pk, "60 points", "100 points", None),
        (d2.pk, "100 points", None, "This deduction has already been reverted."),
    ]
    assert PointTransaction.objects.filter(kind="revert").count() == 1


def test_revert_without_reason_is_refused(support_client, point_rows):
    response = confirm_action(
        support_client, PointTransaction, "revert_points", [point_rows[1]], "no"
    )

    assert response.status_code == 200 and response.context["form"].errors["reason"]
    assert PointTransaction.objects.filter(kind="revert").count() == 1


def test_revert_gives_points_back_once_with_history_and_reports_refusals(
    support_client, point_rows, customer
):
    credit_row, d1, d2 = point_rows

    response = confirm_action(
        support_client, PointTransaction, "revert_points", [credit_row, d1, d2], REASON
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.points == 100
    revert = PointTransaction.objects.get(reverts=d1)
    assert (revert.points, revert.points_after, revert.reason) == (40, 100, REASON)
    done, refused = messages_of(response)
    url = f"/admin/ledger/pointtransaction/{d1.pk}/change/"
    assert done == f'Reverted <a href="{url}">{d1}</a>: 60 points → 100 points.'
    refused = texts_of(response)[1]
    assert refused.startswith("Refused for 2 point transactions, left unchanged:")
    assert "Only a point deduction" in refused and "already been reverted" in refused
    version = latest_version(PointTransaction, revert.pk)
    assert_attributed(version, operation="point_deduction_revert")
    assert version.history_type == "+"
    assert_attributed(latest_version(Customer, customer.pk), operation="point_deduction_revert")


# --- adjust balance and points -------------------------------------------------------------


@pytest.fixture
def two_customers(merchant):
    rich = fund(factories.CustomerFactory(merchant=merchant), balance=100, points=100)
    poor = factories.CustomerFactory(merchant=merchant)
    return rich, poor


def test_adjust_balance_page_asks_for_an_amount_then_previews_each_customer(
    support_client, two_customers
):
    rich, poor = two_customers

    first = post_action(support_client, Customer, "adjust_balance", [rich, poor])
    assert outcomes(first) == [
        (rich.pk, "balance 100", None, None),
        (poor.pk, "balance 0", None, None),
    ]
    assert 'name="amount"' in first.content.decode()

    preview = post_action(
        support_client, Customer, "adjust_balance", [rich, poor], preview="1", amount="-50"
    )
    assert outcomes(preview) == [
        (rich.pk, "balance 100", "balance 50", None),
        (poor.pk, "balance 0", None, "Insufficient balance: the customer has 0."),
    ]
    zero = confirm_action(support_client, Customer, "adjust_balance", [rich], REASON, amount="0")
    assert zero.status_code == 200 and zero.context["form"].errors["amount"]
    rich.refresh_from_db()
    assert rich.balance == 100


def test_adjust_balance_without_reason_is_refused(support_client, two_customers):
    rich, _ = two_customers
    response = confirm_action(support_client, Customer, "adjust_balance", [rich], "", amount="5")
    assert response.status_code == 200 and response.context["form"].errors["reason"]
    assert not BalanceUpdate.objects.filter(reason__gt="", customer=rich).exists()


def test_adjust_balance_applies_a_new_update_per_customer_and_refuses_below_zero(
    support_client, two_customers
):
    rich, poor = two_customers

    response = confirm_action(
        support_client, Customer, "adjust_balance", [rich, poor], REASON, amount="-50"
    )

    assert response.status_code == 302
    rich.refresh_from_db()
    poor.refresh_from_db()
    assert (rich.balance, poor.balance) == (50, 0)
    adjustment = BalanceUpdate.objects.get(customer=rich, reason=REASON)
    assert (adjustment.effect, adjustment.amount, adjustment.store) == ("debit", 50, None)
    done, refused = texts_of(response)
    assert done == f"Adjusted the balance of {rich}: balance 100 → balance 50."
    assert refused == f"Left {poor} unchanged: Insufficient balance: the customer has 0."
    assert_attributed(latest_version(BalanceUpdate, adjustment.pk), operation="balance_adjust")
    version = latest_version(Customer, rich.pk)
    assert_attributed(version, operation="balance_adjust")
    assert [(c.field, c.old, c.new) for c in version.changes] == [("balance", 100, 50)]


def test_adjust_points_applies_to_each_customer_with_history(support_client, two_customers):
    rich, poor = two_customers

    response = confirm_action(
        support_client, Customer, "adjust_points", [rich, poor], REASON, amount="25"
    )

    assert response.status_code == 302
    rich.refresh_from_db()
    poor.refresh_from_db()
    assert (rich.points, poor.points) == (125, 25)
    assert texts_of(response) == [
        f"Adjusted the points of 2 customers:{rich}: 100 points → 125 points"
        f"{poor}: 0 points → 25 points"
    ]
    txn = PointTransaction.objects.get(customer=poor, kind="adjust")
    assert (txn.points, txn.points_after, txn.reason) == (25, 25, REASON)
    assert_attributed(latest_version(Customer, poor.pk), operation="points_adjust")


def test_adjust_points_refuses_going_below_zero(support_client, two_customers):
    _, poor = two_customers
    response = confirm_action(
        support_client, Customer, "adjust_points", [poor], REASON, amount="-1"
    )
    assert texts_of(response) == [f"Left {poor} unchanged: User has 0 points, cannot deduct 1."]
    assert not PointTransaction.objects.filter(customer=poor).exists()


def test_adjust_button_on_the_customer_page(support_client, two_customers):
    rich, _ = two_customers
    url = f"/admin/accounts/customer/{rich.pk}/correction/adjust_points/"
    assert url in support_client.get(f"/admin/accounts/customer/{rich.pk}/change/").content.decode()

    response = confirm_object(support_client, url, REASON, amount="-10")

    assert response.status_code == 302
    assert response["Location"] == f"/admin/accounts/customer/{rich.pk}/change/"
    rich.refresh_from_db()
    assert rich.points == 90


def test_a_selection_too_large_for_one_confirmation_page_is_refused(
    support_client, card, customer, monkeypatch
):
    monkeypatch.setattr(admin_corrections, "MAX_OBJECTS", 2)
    stamps = [factories.StampFactory(card=card, customer=customer, count=1) for _ in range(3)]

    response = post_action(support_client, Stamp, "deduct_stamp", stamps)

    assert response.status_code == 302
    assert messages_of(response) == ["Select at most 2 stamps for one correction."]
