"""Corrective actions: effect, history row, refusals, preview, Idempotency-Key."""

import pytest

from accounts.models import Customer
from ledger import services
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel
from tests import factories
from tests.api.conftest import ledger_snapshot

pytestmark = pytest.mark.django_db


def latest_history(model, pk):
    return model.history.filter(id=pk).order_by("-history_id").first()


def assert_attributed(row, user, reason):
    assert row.history_user_id == user.pk
    assert row.channel == "staff-api"
    assert row.history_change_reason == reason


# --- stamps/{id}/deduct/ ----------------------------------------------------------------------


def test_deduct_takes_one_stamp_and_records_who_and_why(world, api_support, support):
    stamp = world["stamp"]
    response = api_support.post(f"stamps/{stamp.pk}/deduct/", {"reason": "  double scan  "})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == stamp.pk and body["count"] == 1
    assert {"card", "customer", "max_stamps", "active", "redeemed", "start_date"} <= body.keys()
    assert Stamp.objects.get(pk=stamp.pk).count == 1
    row = latest_history(Stamp, stamp.pk)
    assert_attributed(row, support, "double scan")
    assert row.operation == "stamp_remove"


def test_deduct_at_zero_is_409_and_changes_nothing(world, api_support):
    stamp = factories.StampFactory(card=world["card"], customer=world["customer"], count=0)
    before = ledger_snapshot()
    response = api_support.post(f"stamps/{stamp.pk}/deduct/", {"reason": "double scan"})
    assert response.status_code == 409
    assert response.json() == {
        "code": "stamp_count_zero",
        "message": "The stamp count is already 0.",
        "fields": {},
    }
    assert ledger_snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": "ab"}, "reason"),
        ({"reason": "   ab   "}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": None}, "reason"),
        ({"reason": 12345}, "reason"),
        ({"reason": "fine reason", "preview": "yes"}, "preview"),
    ],
)
def test_deduct_needs_a_reason_of_3_to_500(world, api_support, body, field):
    before = ledger_snapshot()
    response = api_support.post(f"stamps/{world['stamp'].pk}/deduct/", body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["fields"]) == [field]
    assert ledger_snapshot() == before


def test_deduct_a_deleted_stamp_is_404(world, api_support):
    stamp = world["stamp"]
    services.stamp_deactivate(actor=None, channel=Channel.COMMAND, stamp=stamp)
    response = api_support.post(f"stamps/{stamp.pk}/deduct/", {"reason": "double scan"})
    assert response.status_code == 404
    assert response.json()["code"] == "stamp_not_found"


def test_deduct_preview_shows_the_after_value_and_changes_nothing(world, api_support):
    stamp = world["stamp"]
    before = ledger_snapshot()
    response = api_support.post(
        f"stamps/{stamp.pk}/deduct/", {"reason": "double scan", "preview": True}
    )
    assert response.status_code == 200
    assert response["Preview"] == "true"
    assert response.json()["count"] == 1
    assert ledger_snapshot() == before


def test_deduct_preview_shows_the_refusal(world, api_support):
    stamp = factories.StampFactory(card=world["card"], customer=world["customer"], count=0)
    response = api_support.post(
        f"stamps/{stamp.pk}/deduct/", {"reason": "double scan", "preview": True}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "stamp_count_zero"


def test_deduct_idempotency_replays_once_and_refuses_another_body(world, api_support):
    stamp = world["stamp"]
    path = f"stamps/{stamp.pk}/deduct/"
    headers = {"Idempotency-Key": "deduct-1"}
    first = api_support.post(path, {"reason": "double scan"}, headers=headers)
    again = api_support.post(path, {"reason": "double scan"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Stamp.objects.get(pk=stamp.pk).count == 1
    assert Stamp.history.filter(id=stamp.pk, operation="stamp_remove").count() == 1
    before = ledger_snapshot()
    other = api_support.post(path, {"reason": "another reason"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert ledger_snapshot() == before


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve"])
def test_invalid_idempotency_key_is_400(world, api_support, key):
    before = ledger_snapshot()
    response = api_support.post(
        f"stamps/{world['stamp'].pk}/deduct/",
        {"reason": "double scan"},
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert ledger_snapshot() == before


def test_a_preview_does_not_use_up_an_idempotency_key(world, api_support):
    path = f"stamps/{world['stamp'].pk}/deduct/"
    headers = {"Idempotency-Key": "k-preview"}
    preview = api_support.post(path, {"reason": "check", "preview": True}, headers=headers)
    assert preview.status_code == 200
    real = api_support.post(path, {"reason": "check"}, headers=headers)
    assert real.status_code == 200 and "Idempotent-Replayed" not in real
    assert Stamp.objects.get(pk=world["stamp"].pk).count == 1


# --- balance-updates/{id}/cancel/ -------------------------------------------------------------


def test_cancel_reverses_the_update_once(world, api_support, support):
    update, customer = world["credit"], world["customer"]
    path = f"balance-updates/{update.pk}/cancel/"
    response = api_support.post(path, {"reason": "wrong customer"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "Canceled" and body["canceled_at"] is not None
    assert body["canceled_by"] == support.username
    assert body["effect"] == "credit" and body["amount"] == 100
    assert Customer.objects.get(pk=customer.pk).balance == 0
    assert_attributed(latest_history(BalanceUpdate, update.pk), support, "wrong customer")
    assert_attributed(latest_history(Customer, customer.pk), support, "wrong customer")

    before = ledger_snapshot()
    twice = api_support.post(path, {"reason": "wrong customer"})
    assert twice.status_code == 409
    assert twice.json()["code"] == "already_canceled"
    assert ledger_snapshot() == before


def test_cancel_of_a_spent_credit_is_409_and_changes_nothing(world, api_support):
    customer = world["customer"]
    services.balance_debit(
        actor=None, channel=Channel.COMMAND, customer=customer, store=world["store"], amount=60
    )
    before = ledger_snapshot()
    response = api_support.post(
        f"balance-updates/{world['credit'].pk}/cancel/", {"reason": "x" * 3}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_balance"
    assert ledger_snapshot() == before


def test_cancel_preview(world, api_support):
    before = ledger_snapshot()
    response = api_support.post(
        f"balance-updates/{world['credit'].pk}/cancel/", {"reason": "check", "preview": True}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "Canceled"
    assert ledger_snapshot() == before


def test_cancel_idempotency(world, api_support):
    path = f"balance-updates/{world['credit'].pk}/cancel/"
    headers = {"Idempotency-Key": "cancel-1"}
    first = api_support.post(path, {"reason": "wrong"}, headers=headers)
    again = api_support.post(path, {"reason": "wrong"}, headers=headers)
    assert first.status_code == again.status_code == 200  # not 409 already_canceled
    assert first.json() == again.json()
    assert Customer.objects.get(pk=world["customer"].pk).balance == 0
    assert BalanceUpdate.history.filter(operation="balance_update_cancel").count() == 1
    assert api_support.post(path, {"reason": "other"}, headers=headers).status_code == 422


# --- point-transactions/{id}/revert/ ----------------------------------------------------------


def test_revert_gives_the_points_back_once(world, api_support, support):
    deduction, customer = world["deduction"], world["customer"]
    assert customer.points == 90
    path = f"point-transactions/{deduction.pk}/revert/"
    response = api_support.post(path, {"reason": "redemption failed"})
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "revert" and body["points"] == 10 and body["points_after"] == 100
    assert body["reverts"] == deduction.pk
    assert Customer.objects.get(pk=customer.pk).points == 100
    revert = PointTransaction.objects.get(pk=body["id"])
    assert_attributed(latest_history(PointTransaction, revert.pk), support, "redemption failed")
    assert api_support.get(f"point-transactions/{deduction.pk}/").json()["reverted_by"] == revert.pk

    before = ledger_snapshot()
    twice = api_support.post(path, {"reason": "redemption failed"})
    assert twice.status_code == 409
    assert twice.json()["code"] == "already_reverted"
    assert ledger_snapshot() == before


def test_revert_of_something_that_is_not_a_deduction_is_409(world, api_support):
    before = ledger_snapshot()
    response = api_support.post(
        f"point-transactions/{world['credit_points'].pk}/revert/", {"reason": "nope"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "not_a_deduction"
    assert ledger_snapshot() == before


def test_revert_preview_has_no_id_and_changes_nothing(world, api_support):
    before = ledger_snapshot()
    response = api_support.post(
        f"point-transactions/{world['deduction'].pk}/revert/", {"reason": "chk", "preview": True}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] is None and body["partner_transaction_id"] is None
    assert body["points_after"] == 100
    assert ledger_snapshot() == before


def test_revert_idempotency(world, api_support):
    path = f"point-transactions/{world['deduction'].pk}/revert/"
    headers = {"Idempotency-Key": "revert-1"}
    first = api_support.post(path, {"reason": "failed"}, headers=headers)
    again = api_support.post(path, {"reason": "failed"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert PointTransaction.objects.filter(kind="revert").count() == 1
    assert api_support.post(path, {"reason": "other"}, headers=headers).status_code == 422


# --- customers/{id}/adjust-balance/ and adjust-points/ ----------------------------------------


@pytest.mark.parametrize(
    ("action", "field", "row_key", "start"),
    [
        ("adjust-balance", "balance", "balance_update", 100),
        ("adjust-points", "points", "point_transaction", 90),
    ],
)
@pytest.mark.parametrize("amount", [25, "25", -25, "-25"])
def test_adjust_moves_by_a_signed_amount(
    world, api_support, support, action, field, row_key, start, amount
):
    customer = world["customer"]
    response = api_support.post(
        f"customers/{customer.pk}/{action}/", {"amount": amount, "reason": "goodwill"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    expected = start + int(amount)
    assert body["id"] == customer.pk and body[field] == expected
    assert getattr(Customer.objects.get(pk=customer.pk), field) == expected
    row = body[row_key]
    assert row["id"] is not None and row["reason"] == "goodwill"
    assert row.get("balance_after", row.get("points_after")) == expected
    assert_attributed(latest_history(Customer, customer.pk), support, "goodwill")


@pytest.mark.parametrize(
    ("action", "code"),
    [("adjust-balance", "insufficient_balance"), ("adjust-points", "insufficient_points")],
)
def test_adjust_below_zero_is_409_and_changes_nothing(world, api_support, action, code):
    before = ledger_snapshot()
    response = api_support.post(
        f"customers/{world['customer'].pk}/{action}/", {"amount": -1000, "reason": "too much"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == code
    assert ledger_snapshot() == before


@pytest.mark.parametrize("action", ["adjust-balance", "adjust-points"])
@pytest.mark.parametrize(
    "amount",
    [0, "0", True, 1.5, "1.5", None, "", "abc", " 5", 10**12 + 1, -(10**12) - 1, "9" * 40, [5]],
)
def test_adjust_amount_follows_the_integer_rules(world, api_support, action, amount):
    before = ledger_snapshot()
    response = api_support.post(
        f"customers/{world['customer'].pk}/{action}/", {"amount": amount, "reason": "checking"}
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == ["amount"]
    assert ledger_snapshot() == before


def test_adjust_accepts_the_limits(world, api_support):
    response = api_support.post(
        f"customers/{world['customer'].pk}/adjust-points/",
        {"amount": 10**12, "reason": "max"},
    )
    assert response.status_code == 200
    assert response.json()["points"] == 10**12 + 90


@pytest.mark.parametrize("action", ["adjust-balance", "adjust-points"])
def test_adjust_preview(world, api_support, action):
    before = ledger_snapshot()
    response = api_support.post(
        f"customers/{world['customer'].pk}/{action}/",
        {"amount": -5, "reason": "check", "preview": True},
    )
    assert response.status_code == 200
    body = response.json()
    row = body.get("balance_update") or body.get("point_transaction")
    assert row["id"] is None
    assert body["balance"] == 95 or body["points"] == 85
    assert ledger_snapshot() == before


@pytest.mark.parametrize("action", ["adjust-balance", "adjust-points"])
def test_adjust_idempotency(world, api_support, action):
    customer = world["customer"]
    path = f"customers/{customer.pk}/{action}/"
    headers = {"Idempotency-Key": f"{action}-1"}
    first = api_support.post(path, {"amount": 7, "reason": "goodwill"}, headers=headers)
    again = api_support.post(path, {"amount": 7, "reason": "goodwill"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    customer.refresh_from_db()
    assert (customer.balance, customer.points) in {(107, 90), (100, 97)}
    before = ledger_snapshot()
    other = api_support.post(path, {"amount": 8, "reason": "goodwill"}, headers=headers)
    assert other.status_code == 422
    assert ledger_snapshot() == before


def test_same_key_for_different_users_does_not_collide(world, api_support, superuser):
    from tests.api.conftest import StaffClient, token_for

    path = f"customers/{world['customer'].pk}/adjust-points/"
    headers = {"Idempotency-Key": "shared"}
    assert (
        api_support.post(path, {"amount": 1, "reason": "one"}, headers=headers).status_code == 200
    )
    admin = StaffClient(token_for(superuser))
    assert admin.post(path, {"amount": 2, "reason": "two"}, headers=headers).status_code == 200
    assert Customer.objects.get(pk=world["customer"].pk).points == 93


def test_correction_of_unknown_object_is_404(api_support, db):
    response = api_support.post("stamps/123456/deduct/", {"reason": "nothing"})
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "fields": {}}
