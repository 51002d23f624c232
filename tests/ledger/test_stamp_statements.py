"""The two-statement stamp moves (ledger.statements.lock_stamp, move_stamp) leave exactly the
rows the ORM path leaves: the same stamp, the same history row, the same event and customer
event count, column for column; they refuse with the same errors in the same order; and the
partner daily cap stays exact under concurrent removals."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Customer
from ledger import errors, services, statements
from ledger.models import Event, Stamp
from loyalty.audit import Channel, approving
from loyalty.request_id import _request_id
from tests import factories
from tests.helpers import postgres_only, run_concurrently

pytestmark = [postgres_only]

# Columns that differ between two stamps (or their rows) by nature.
IDENTITY = {"id", "history_id", "history_date", "created", "customer_id", "request_id"}


def columns(instance, *, skip=()) -> dict:
    values = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
    return {k: v for k, v in values.items() if k not in IDENTITY | set(skip)}


def latest_history(stamp):
    return Stamp.history.filter(id=stamp.pk).order_by("-history_id").first()


def event_of(stamp) -> Event:
    event = Event.objects.filter(customer_id=stamp.customer_id).order_by("-id").first()
    assert event.data["stamp"]["id"] == stamp.pk
    event.data["stamp"].pop("id")
    return event


@pytest.fixture
def both_paths(monkeypatch, card):
    """Run `operation(stamp)` once per path on two identical stamps (of two customers);
    returns [(outcome, stamp now, customer now), ...], the statement path first."""

    def run(operation, **stamp_fields):
        results = []
        for fast in (True, False):
            monkeypatch.setattr(statements, "available", lambda v=fast: v)
            stamp = factories.StampFactory(card=card, **stamp_fields)
            token = _request_id.set(f"req-{fast}")
            try:
                outcome = operation(stamp)
            except errors.DomainError as exc:
                outcome = exc
            finally:
                _request_id.reset(token)
            now = Stamp.objects.get(pk=stamp.pk)
            results.append((outcome, now, Customer.objects.get(pk=stamp.customer_id)))
        return results

    return run


def assert_same_rows(results, operation: str):
    (fast, fast_stamp, fast_customer), (orm, orm_stamp, orm_customer) = results
    assert isinstance(fast, Stamp) and isinstance(orm, Stamp)
    assert columns(fast) == columns(orm) == columns(fast_stamp) == columns(orm_stamp)
    assert fast.pk == fast_stamp.pk and fast.customer_id == fast_stamp.customer_id
    assert fast_customer.event_sequence == orm_customer.event_sequence >= 1
    fast_history, orm_history = latest_history(fast_stamp), latest_history(orm_stamp)
    assert (fast_history.history_type, fast_history.operation) == ("~", operation)
    assert (fast_history.request_id, orm_history.request_id) == ("req-True", "req-False")
    assert columns(fast_history) == columns(orm_history)
    assert fast_history.count == fast_stamp.count
    fast_event, orm_event = event_of(fast_stamp), event_of(orm_stamp)
    skip = {"event_id", "txid"}
    assert columns(fast_event, skip=skip) == columns(orm_event, skip=skip)
    assert fast_event.customer_sequence == fast_customer.event_sequence
    assert (fast_event.request_id, orm_event.request_id) == ("req-True", "req-False")
    assert fast_event.txid is not None and orm_event.txid is not None
    assert fast_event.event_id.startswith("evt_")


@pytest.mark.django_db
def test_add_rows_match(both_paths, partner):
    results = both_paths(
        lambda stamp: services.stamp_add(
            actor=partner.user,
            channel=Channel.STAMP_API,
            stamp=stamp.pk,
            merchant_ids=frozenset(partner.merchants.values_list("pk", flat=True)),
        ),
        count=3,
    )
    assert_same_rows(results, "stamp_add")
    assert results[0][1].count == 4
    assert event_of(results[0][1]).data["count_before"] == 3


@pytest.mark.django_db
def test_remove_with_reason_and_cap_rows_match(both_paths, partner):
    results = both_paths(
        lambda stamp: services.stamp_remove(
            actor=partner.user,
            channel=Channel.STAMP_API,
            stamp=stamp.pk,
            reason="double scan",
            daily_cap=3,
            merchant_ids=frozenset(partner.merchants.values_list("pk", flat=True)),
        ),
        count=3,
    )
    assert_same_rows(results, "stamp_remove")
    (_fast, fast_stamp, _), _orm = results
    assert fast_stamp.count == 2
    assert latest_history(fast_stamp).history_change_reason == "double scan"
    assert event_of(fast_stamp).reason == "double scan"
    assert event_of(fast_stamp).data["count_before"] == 3


@pytest.mark.django_db
def test_an_approved_staff_removal_names_the_approver_on_both_paths(both_paths, support):
    approver = factories.UserFactory(username="approver-1", is_superuser=True)

    def approved(stamp):
        with approving(approver=approver, approval_id=7, reason="checked"):
            return services.stamp_remove(
                actor=support, channel=Channel.STAFF_API, stamp=stamp, reason="customer asked"
            )

    results = both_paths(approved, count=2)
    assert_same_rows(results, "stamp_remove")
    fast_stamp = results[0][1]
    history = latest_history(fast_stamp)
    assert (history.approved_by_id, history.approval_id, history.approval_reason) == (
        approver.pk,
        7,
        "checked",
    )
    assert event_of(fast_stamp).data["approval"] == {
        "id": 7,
        "approved_by": "approver-1",
        "reason": "checked",
    }


def _yesterday():
    return timezone.localdate() - dt.timedelta(days=1)


REFUSALS = [
    ("add", {"active": False}, errors.StampInactive),
    ("add", {"end_date": _yesterday, "start_date": _yesterday}, errors.StampOutOfPeriod),
    ("add", {"redeemed": True, "active": False}, errors.StampInactive),  # precedence
    ("add", {"redeemed": True}, errors.RewardAlreadyRedeemed),
    ("add", {"count": 10}, errors.StampAtMax),
    ("add", {"deleted_at": timezone.now}, errors.StampNotFound),
    ("remove", {"count": 0}, errors.StampCountZero),
    ("remove", {"deleted_at": timezone.now}, errors.StampNotFound),
    ("remove", {"count": 0, "deleted_at": timezone.now}, errors.StampNotFound),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("move", "fields", "refusal"), REFUSALS)
def test_refusals_match_and_write_nothing(both_paths, partner, move, fields, refusal):
    fields = {k: v() if callable(v) else v for k, v in fields.items()}
    merchant_ids = frozenset(partner.merchants.values_list("pk", flat=True))
    service = services.stamp_add if move == "add" else services.stamp_remove
    results = both_paths(
        lambda stamp: service(
            actor=partner.user, channel=Channel.STAMP_API, stamp=stamp.pk, merchant_ids=merchant_ids
        ),
        **fields,
    )
    (fast, fast_stamp, fast_customer), (orm, orm_stamp, orm_customer) = results
    assert isinstance(fast, refusal) and isinstance(orm, refusal)
    assert (fast.code, str(fast)) == (orm.code, str(orm))
    for stamp, customer in ((fast_stamp, fast_customer), (orm_stamp, orm_customer)):
        assert stamp.history.count() == 1  # created only
        assert customer.event_sequence == 0
        assert not Event.objects.filter(customer_id=customer.pk).exists()


@pytest.mark.django_db
def test_a_stamp_of_another_merchant_is_not_found_on_both_paths(monkeypatch, partner):
    other = factories.StampCardFactory(max_stamps=10)
    results = []
    for fast in (True, False):
        monkeypatch.setattr(statements, "available", lambda v=fast: v)
        stamp = factories.StampFactory(card=other, count=2)
        try:
            services.stamp_remove(
                actor=partner.user,
                channel=Channel.STAMP_API,
                stamp=stamp.pk,
                merchant_ids=frozenset(partner.merchants.values_list("pk", flat=True)),
            )
        except errors.StampNotFound as exc:
            results.append(exc)
        assert Stamp.objects.get(pk=stamp.pk).count == 2
    assert len(results) == 2


@pytest.mark.django_db
def test_a_partner_unknown_stamp_is_refused_before_its_reason(partner):
    with pytest.raises(errors.StampNotFound):
        services.stamp_remove(
            actor=partner.user,
            channel=Channel.STAMP_API,
            stamp=2**40,
            reason="x" * 10_000,
            merchant_ids=frozenset(partner.merchants.values_list("pk", flat=True)),
        )
    with pytest.raises(errors.StampNotFound):
        services.stamp_add(
            actor=partner.user, channel=Channel.STAMP_API, stamp=2**70, merchant_ids=frozenset()
        )


@pytest.mark.django_db
def test_the_cap_refuses_on_the_statement_path_and_writes_nothing(card):
    stamp = factories.StampFactory(card=card, count=5)
    for _ in range(2):
        services.stamp_remove(actor=None, channel=Channel.STAMP_API, stamp=stamp, daily_cap=2)
    # A staff correction on another channel does not count against the partner's cap.
    services.stamp_remove(
        actor=None, channel=Channel.COMMAND, stamp=stamp, reason="staff fix", daily_cap=2
    )
    with pytest.raises(errors.CorrectionLimitReached):
        services.stamp_remove(actor=None, channel=Channel.STAMP_API, stamp=stamp, daily_cap=2)
    stamp.refresh_from_db()
    assert stamp.count == 2
    assert stamp.history.count() == 4
    assert Customer.objects.get(pk=stamp.customer_id).event_sequence == 3


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_removals_at_cap_three_exactly_three_succeed(card):
    """Real threads, each its own connection and transaction, released together: the cap's
    count runs after the stamp's lock, in a statement of its own (see ledger.statements)."""
    for _ in range(3):
        stamp = factories.StampFactory(card=card, count=10)
        results = run_concurrently(
            8,
            lambda i, s=stamp: services.stamp_remove(
                actor=None,
                channel=Channel.STAMP_API,
                stamp=s.pk,
                daily_cap=3,
                merchant_ids=frozenset({s.merchant_id}),
            ),
        )
        ok = [r for r in results if isinstance(r, Stamp)]
        capped = [r for r in results if isinstance(r, errors.CorrectionLimitReached)]
        assert (len(ok), len(capped)) == (3, 5), results
        assert Stamp.objects.get(pk=stamp.pk).count == 7
        assert Stamp.history.filter(id=stamp.pk, operation="stamp_remove").count() == 3
        sequences = Event.objects.filter(customer_id=stamp.customer_id).values_list(
            "customer_sequence", flat=True
        )
        assert sorted(sequences) == [1, 2, 3]
        assert sorted(r.count for r in ok) == [7, 8, 9]
