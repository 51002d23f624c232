import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from ledger import reconcile, services
from loyalty.audit import Channel
from tests.helpers import fund, postgres_only

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_ledger(customer, store, partner, stamp, support):
    """A ledger where every kind of movement has happened."""
    fund(customer, balance=500, points=1000, store=store)
    debit = services.balance_debit(
        actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=100
    )
    services.balance_update_cancel(
        actor=support, channel=Channel.ADMIN, balance_update=debit, reason="wrong amount"
    )
    deduction = services.point_deduct(
        actor=partner.user,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=customer,
        points=300,
        redemption_id="r-1",
    )
    services.point_deduction_revert(
        actor=partner.user, channel=Channel.POINTS_API, deduction=deduction
    )
    services.points_adjust(
        actor=support, channel=Channel.ADMIN, customer=customer, amount=-5, reason="fix"
    )
    services.stamp_add(actor=None, channel=Channel.STAMP_API, stamp=stamp)
    return customer


def run_command(*args):
    try:
        call_command("reconcile", *args)
    except SystemExit as exc:
        return exc.code
    return 0


def test_a_consistent_ledger_passes(busy_ledger, capsys):
    assert reconcile.run()[0] == []
    assert run_command() == 0
    assert "reconcile OK: 16 checks, 0 violations" in capsys.readouterr().out


def test_a_corrupted_cached_balance_fails_and_names_the_customer(busy_ledger, capsys):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_customer SET balance = balance + 7 WHERE id = %s", [busy_ledger.pk]
        )
    assert run_command() == 1
    out = capsys.readouterr().out
    assert f"balance_matches_ledger: customer={busy_ledger.pk} cached_balance=507" in out
    assert f"customer_matches_history: customer={busy_ledger.pk}" in out
    assert "reconcile FAILED" in out


def test_corrupted_points_fail_in_json(busy_ledger, capsys):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_customer SET points = 0 WHERE id = %s", [busy_ledger.pk])
    assert run_command("--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert {
        "check": "points_match_ledger",
        "customer": busy_ledger.pk,
        "cached_points": 0,
        "ledger_points": 995,
    } in report["violations"]


def test_a_stamp_count_changed_behind_historys_back_fails(stamp, capsys):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_stamp SET count = 4 WHERE id = %s", [stamp.pk])
    assert run_command() == 1
    assert f"stamp_matches_history: stamp={stamp.pk} count=4 history_count=0" in (
        capsys.readouterr().out
    )


@postgres_only
def test_a_ledger_row_without_its_event_and_an_event_without_its_row_fail(busy_ledger, capsys):
    from ledger.models import BalanceUpdate, Event

    debit = BalanceUpdate.objects.filter(effect="debit").get()
    event = Event.objects.get(type="balance.debited")
    with transaction.atomic(), connection.cursor() as cursor:
        # Move the debit's event onto another (nonexistent) row, as a lost write would.
        cursor.execute("SET LOCAL session_replication_role = replica")  # past append-only
        cursor.execute(
            "UPDATE ledger_event SET data = jsonb_set(data, '{balance_update,id}', '999999') "
            "WHERE id = %s",
            [event.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert run_command() == 1
    out = capsys.readouterr().out
    assert f"ledger_rows_have_events: model=balance_update id={debit.pk} event=created" in out
    assert f"ledger_rows_have_events: model=event id={event.pk} event=balance.debited" in out


def test_a_gap_in_a_customers_events_fails(busy_ledger, capsys):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_customer SET event_sequence = event_sequence + 1 WHERE id = %s",
            [busy_ledger.pk],
        )
    assert run_command() == 1
    assert f"customer_events_gap_free: customer={busy_ledger.pk}" in capsys.readouterr().out
