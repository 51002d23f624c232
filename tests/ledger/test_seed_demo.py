"""seed_demo makes one of every ledger row a correction acts on, once, through the services."""

import pytest
from django.core.management import call_command

from accounts.models import Customer
from ledger import corrections, reconcile
from ledger.admin.corrections import ADMIN_CORRECTIONS
from ledger.models import BalanceUpdate, Event, PointTransaction, Stamp
from loyalty.audit import Channel

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    models = [Customer, Stamp, BalanceUpdate, PointTransaction, Event]
    return {
        **{m.__name__: m.objects.count() for m in models},
        **{f"history {m.__name__}": m.history.count() for m in models[:4]},
    }


def test_seed_demo_makes_every_row_kind_a_correction_acts_on_and_twice_adds_nothing(capsys):
    call_command("seed_demo", "--json")
    after_first = counts()
    call_command("seed_demo", "--json")

    assert counts() == after_first
    # Every kind exists once, each in the state its name says.
    deduction = PointTransaction.objects.get(redemption_id="seed-redeem-1", kind="deduct")
    reverted = PointTransaction.objects.get(redemption_id="seed-redeem-2", kind="deduct")
    attention = PointTransaction.objects.get(redemption_id="seed-redeem-3", kind="deduct")
    assert not PointTransaction.objects.filter(reverts=deduction).exists()
    assert PointTransaction.objects.get(reverts=reverted).reason
    assert attention.needs_attention and attention.confirmation_status == "reverted"
    assert PointTransaction.objects.filter(needs_attention=True).count() == 1
    canceled = BalanceUpdate.objects.get(status="Canceled")
    assert canceled.cancel_reason and canceled.effect == "debit"
    stamps = list(Stamp.objects.order_by("pk"))
    assert any(s.count == 0 for s in stamps) and any(s.count == s.max_stamps for s in stamps)
    # Through the services: each is in history (as the system, on the command channel) and
    # the ledger reconciles.
    assert {v.history_user_id for v in PointTransaction.history.all()} == {None}
    assert set(PointTransaction.history.values_list("channel", flat=True)) == {Channel.COMMAND}
    assert reconcile.run()[0] == []
    # What each correction is offered on: an available and an unavailable row of each kind.
    available = ADMIN_CORRECTIONS
    assert available["revert_points"].available(deduction)
    assert not available["revert_points"].available(reverted)
    assert not available["cancel_balance_update"].available(canceled)
    assert any(available["cancel_balance_update"].available(u) for u in BalanceUpdate.objects.all())
    assert {available["deduct_stamp"].available(s) for s in stamps} == {True, False}
    assert corrections.BY_KIND["deduct_stamp"].available(stamps[0]) == (stamps[0].count > 0)
