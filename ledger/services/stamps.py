"""Stamp services: cards, stamps, adding one, the corrections (remove, set count), deactivation."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import Customer
from ledger import errors, events, statements
from ledger.models import Stamp, StampCard
from ledger.selectors import stamp_for_partner
from ledger.services._common import _reason, _start_of_today
from loyalty.audit import audited
from loyalty.errors import InvalidInput


def _lock_stamp(stamp: Stamp) -> Stamp:
    """The stamp, locked after its customer's row (the order every move locks in): the
    customer's row holds the count of its events."""
    list(Customer.objects.select_for_update(no_key=True).filter(pk=stamp.customer_id).values("pk"))
    stamp = Stamp.objects.select_for_update().filter(pk=stamp.pk, deleted_at__isnull=True).first()
    if stamp is None:
        raise errors.StampNotFound()
    return stamp


def _record(stamp: Stamp, count_before: int) -> None:
    """The stamp's event, inside the service's `audited()` block, under the customer's lock."""
    events.record(
        merchant_id=stamp.merchant_id,
        customer_id=stamp.customer_id,
        sequence=events.next_sequence(stamp.customer_id),
        data=events.stamp_data(stamp, count_before),
    )


@transaction.atomic
def stamp_card_create(*, actor, channel: str, merchant, name: str, max_stamps: int) -> StampCard:
    if not name.strip():
        raise InvalidInput("name", "must not be empty")
    if (
        isinstance(max_stamps, bool)
        or not isinstance(max_stamps, int)
        or not 1 <= max_stamps <= 10000
    ):
        raise InvalidInput("max_stamps", "must be an integer from 1 to 10000")
    with audited(actor=actor, channel=channel, operation="stamp_card_create"):
        return StampCard.objects.create(merchant=merchant, name=name.strip(), max_stamps=max_stamps)


@transaction.atomic
def stamp_create(
    *,
    actor,
    channel: str,
    card: StampCard,
    customer: Customer,
    start_date: dt.date,
    end_date: dt.date,
    active: bool = True,
    memo: str = "",
    external_user_id: str = "",
    external_user_name: str = "",
    external_user_phone: str = "",
    external_user_email: str = "",
) -> Stamp:
    if card.merchant_id != customer.merchant_id:
        raise InvalidInput("customer", "belongs to another merchant than the card")
    if start_date > end_date:
        raise InvalidInput("end_date", "must not be before start_date", refers_to=("start_date",))
    with audited(actor=actor, channel=channel, operation="stamp_create"):
        stamp = Stamp.objects.create(
            merchant_id=card.merchant_id,
            card=card,
            customer=customer,
            max_stamps=card.max_stamps,
            start_date=start_date,
            end_date=end_date,
            active=active,
            memo=memo,
            external_user_id=external_user_id,
            external_user_name=external_user_name,
            external_user_phone=external_user_phone,
            external_user_email=external_user_email,
        )
        _record(stamp, 0)
    return stamp


def _locked_for_move(stamp: Stamp | int, merchant_ids: frozenset[int] | None) -> Stamp:
    """The stamp of an add or a remove, locked after its customer's row. `stamp` is the stamp
    or its id; with `merchant_ids` (a partner's) a stamp of another merchant is not found, so
    the Stamp API needs no look-up before this. On PostgreSQL one statement finds and locks
    (ledger.statements.lock_stamp)."""
    stamp_id = stamp if isinstance(stamp, int) else stamp.pk
    if statements.available():
        locked = statements.lock_stamp(stamp_id, merchant_ids)
        if locked is None:
            raise errors.StampNotFound()
        return locked
    if isinstance(stamp, int):
        if merchant_ids is not None:
            stamp = stamp_for_partner(merchant_ids, stamp_id)
        else:
            stamp = Stamp.objects.filter(pk=stamp_id, deleted_at__isnull=True).first()
    elif merchant_ids is not None and stamp.merchant_id not in merchant_ids:
        stamp = None
    if stamp is None:
        raise errors.StampNotFound()
    return _lock_stamp(stamp)


def _move(stamp: Stamp, delta: int, *, channel: str, daily_cap: int | None = None) -> Stamp:
    """Save the locked `stamp`'s count moved by `delta`, and its event; inside `audited()`.
    A removal's `daily_cap` is checked here (on PostgreSQL by the move's own statement)."""
    if statements.available():
        moved = statements.move_stamp(
            stamp=stamp, delta=delta, daily_cap=daily_cap, since=_start_of_today()
        )
        if moved is None:
            raise errors.CorrectionLimitReached()
        return moved
    if delta < 0:
        _check_daily_cap(stamp, channel, daily_cap)
    stamp.count += delta
    stamp.save(update_fields=["count"])
    _record(stamp, stamp.count - delta)
    return stamp


@transaction.atomic
def stamp_add(
    *, actor, channel: str, stamp: Stamp | int, merchant_ids: frozenset[int] | None = None
) -> Stamp:
    """Add one stamp. `stamp` may be its id; with `merchant_ids` it must be theirs."""
    stamp = _locked_for_move(stamp, merchant_ids)
    today = timezone.localdate()
    if not stamp.active:
        raise errors.StampInactive()
    if not stamp.start_date <= today <= stamp.end_date:
        raise errors.StampOutOfPeriod()
    if stamp.redeemed:
        raise errors.RewardAlreadyRedeemed()
    if stamp.count >= stamp.max_stamps:
        raise errors.StampAtMax()
    with audited(actor=actor, channel=channel, operation="stamp_add"):
        return _move(stamp, +1, channel=channel)


def _corrections_today(stamp: Stamp, channel: str) -> int:
    return Stamp.history.filter(
        id=stamp.pk,
        channel=channel,
        operation__in=[stamp_remove.__name__, stamp_set_count.__name__],
        history_date__gte=_start_of_today(),
    ).count()


def _check_daily_cap(stamp: Stamp, channel: str, daily_cap: int | None) -> None:
    # Runs under the stamp's row lock, so concurrent removals count each other.
    if daily_cap is not None and _corrections_today(stamp, channel) >= daily_cap:
        raise errors.CorrectionLimitReached()


@transaction.atomic
def stamp_remove(
    *,
    actor,
    channel: str,
    stamp: Stamp | int,
    reason: str = "",
    daily_cap: int | None = None,
    merchant_ids: frozenset[int] | None = None,
) -> Stamp:
    """Take one stamp off (a correction). Never below 0; `daily_cap` limits partner calls.
    `stamp` may be its id; with `merchant_ids` it must be theirs."""
    if merchant_ids is None:
        reason = _reason(channel, reason)
    stamp = _locked_for_move(stamp, merchant_ids)
    if merchant_ids is not None:
        # A partner's unknown stamp is refused before its reason, as the API always did.
        reason = _reason(channel, reason)
    if stamp.count == 0:
        raise errors.StampCountZero()
    with audited(actor=actor, channel=channel, reason=reason, operation="stamp_remove"):
        return _move(stamp, -1, channel=channel, daily_cap=daily_cap)


def _checked_count(stamp: Stamp, count, channel: str, reason: str, daily_cap) -> str:
    """Refuse a new count the locked `stamp` may not take; answers the correction's reason."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidInput("count", "must be an integer of 0 or more")
    if count > stamp.max_stamps:
        raise errors.StampAtMax(f"The stamp count may not exceed {stamp.max_stamps}.")
    reason = _reason(channel, reason)
    _check_daily_cap(stamp, channel, daily_cap)
    return reason


def _save_count(
    *, actor, channel: str, stamp: Stamp, count: int, reason: str, record: bool
) -> None:
    """Save a checked count; `record` writes its `stamp.updated` event too (stamp_update
    writes one event for all its changes instead)."""
    count_before, stamp.count = stamp.count, count
    with audited(actor=actor, channel=channel, reason=reason, operation="stamp_set_count"):
        stamp.save(update_fields=["count"])
        if record:
            _record(stamp, count_before)


@transaction.atomic
def stamp_set_count(
    *,
    actor,
    channel: str,
    stamp: Stamp,
    count: int,
    reason: str = "",
    daily_cap: int | None = None,
) -> Stamp:
    """Set a stamp's count directly (a correction, capped with removals by `daily_cap`)."""
    stamp = _lock_stamp(stamp)
    if count != stamp.count:
        reason = _checked_count(stamp, count, channel, reason, daily_cap)
        _save_count(
            actor=actor, channel=channel, stamp=stamp, count=count, reason=reason, record=True
        )
    return stamp


@transaction.atomic
def stamp_update(
    *,
    actor,
    channel: str,
    stamp: Stamp,
    count: int | None = None,
    redeemed: bool | None = None,
    active: bool | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    memo: str | None = None,
    reason: str = "",
    daily_cap: int | None = None,
) -> Stamp:
    """Change a stamp's fields (the Stamp API's `update`), in one transaction.

    A new `count` is a correction: it is checked first and recorded as `stamp_set_count`, in
    its own history row after the other fields' `stamp_update` row, so each row is named by
    the service that it records and the daily cap counts exactly the count changes.
    """
    stamp = _lock_stamp(stamp)
    count_before = stamp.count
    sets_count = count is not None and count != stamp.count
    if sets_count:
        count_reason = _checked_count(stamp, count, channel, reason, daily_cap)
    changed: list[str] = []
    for field, value in (
        ("redeemed", redeemed),
        ("active", active),
        ("start_date", start_date),
        ("end_date", end_date),
        ("memo", memo),
    ):
        if value is not None and getattr(stamp, field) != value:
            setattr(stamp, field, value)
            changed.append(field)
    if stamp.start_date > stamp.end_date:
        raise InvalidInput("end_date", "must not be before start_date", refers_to=("start_date",))
    if changed:
        with audited(actor=actor, channel=channel, reason=reason, operation="stamp_update"):
            stamp.save(update_fields=changed)
    if sets_count:
        _save_count(
            actor=actor,
            channel=channel,
            stamp=stamp,
            count=count,
            reason=count_reason,
            record=False,
        )
    if changed or sets_count:
        # One operation, one event: `stamp.updated` for all that this update changed.
        reason = count_reason if sets_count else reason
        with audited(actor=actor, channel=channel, reason=reason, operation="stamp_update"):
            _record(stamp, count_before)
    return stamp


@transaction.atomic
def stamp_deactivate(*, actor, channel: str, stamp: Stamp, reason: str = "") -> Stamp:
    """Deactivate and hide a stamp; its history stays."""
    stamp = _lock_stamp(stamp)
    stamp.active = False
    stamp.deleted_at = timezone.now()
    with audited(actor=actor, channel=channel, reason=reason.strip(), operation="stamp_deactivate"):
        stamp.save(update_fields=["active", "deleted_at"])
        _record(stamp, stamp.count)
    return stamp
