"""Stamp services: cards, stamps, adding one, the corrections (remove, set count), deactivation."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import Customer
from ledger import errors, events
from ledger.models import Stamp, StampCard
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
        raise InvalidInput("endYmd", "must not be before strtYmd")
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


@transaction.atomic
def stamp_add(*, actor, channel: str, stamp: Stamp) -> Stamp:
    stamp = _lock_stamp(stamp)
    today = timezone.localdate()
    if not stamp.active:
        raise errors.StampInactive()
    if not stamp.start_date <= today <= stamp.end_date:
        raise errors.StampOutOfPeriod()
    if stamp.redeemed:
        raise errors.RewardAlreadyRedeemed()
    if stamp.count >= stamp.max_stamps:
        raise errors.StampAtMax()
    stamp.count += 1
    with audited(actor=actor, channel=channel, operation="stamp_add"):
        stamp.save(update_fields=["count"])
        _record(stamp, stamp.count - 1)
    return stamp


def _corrections_today(stamp: Stamp, channel: str) -> int:
    return Stamp.history.filter(
        id=stamp.pk,
        channel=channel,
        operation__in=["stamp_remove", "stamp_set_count"],
        history_date__gte=_start_of_today(),
    ).count()


def _check_daily_cap(stamp: Stamp, channel: str, daily_cap: int | None) -> None:
    # Runs under the stamp's row lock, so concurrent removals count each other.
    if daily_cap is not None and _corrections_today(stamp, channel) >= daily_cap:
        raise errors.CorrectionLimitReached()


@transaction.atomic
def stamp_remove(
    *, actor, channel: str, stamp: Stamp, reason: str = "", daily_cap: int | None = None
) -> Stamp:
    """Take one stamp off (a correction). Never below 0; `daily_cap` limits partner calls."""
    reason = _reason(channel, reason)
    stamp = _lock_stamp(stamp)
    if stamp.count == 0:
        raise errors.StampCountZero()
    _check_daily_cap(stamp, channel, daily_cap)
    stamp.count -= 1
    with audited(actor=actor, channel=channel, reason=reason, operation="stamp_remove"):
        stamp.save(update_fields=["count"])
        _record(stamp, stamp.count + 1)
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
    """Change a stamp's fields. Setting `count` directly is a correction."""
    stamp = _lock_stamp(stamp)
    count_before = stamp.count
    changed: list[str] = []
    operation = "stamp_update"
    if count is not None and count != stamp.count:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInput("stamps", "must be an integer of 0 or more")
        if count > stamp.max_stamps:
            raise errors.StampAtMax(f"The stamp count may not exceed {stamp.max_stamps}.")
        reason = _reason(channel, reason)
        _check_daily_cap(stamp, channel, daily_cap)
        stamp.count = count
        changed.append("count")
        operation = "stamp_set_count"
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
        raise InvalidInput("endYmd", "must not be before strtYmd")
    if changed:
        with audited(actor=actor, channel=channel, reason=reason, operation=operation):
            stamp.save(update_fields=changed)
            _record(stamp, count_before)
    return stamp


@transaction.atomic
def stamp_deactivate(*, actor, channel: str, stamp: Stamp, reason: str = "") -> Stamp:
    """Deactivate and hide a stamp; its history stays."""
    stamp = _lock_stamp(stamp)
    stamp.active = False
    stamp.deleted_at = timezone.now()
    with audited(actor=actor, channel=channel, reason=reason.strip(), operation="stamp_delete"):
        stamp.save(update_fields=["active", "deleted_at"])
        _record(stamp, stamp.count)
    return stamp
