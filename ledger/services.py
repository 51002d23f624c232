"""Ledger services: the only code that changes a stamp count, a balance, points or a status.

Every function is one business operation: keyword-only, typed, one short transaction at
READ COMMITTED. It locks the rows it changes (customer first, then the ledger row) and
leaves the last word to the database's constraints. Each takes the actor and the channel,
and corrections take a reason; history rows carry all three (see loyalty.audit).
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone
from uuid6 import uuid7

from accounts.models import Customer, Store
from ledger import errors, statements
from ledger.models import MAX_AMOUNT, BalanceUpdate, PointTransaction, Stamp, StampCard
from loyalty.audit import STAFF_CHANNELS, audited
from loyalty.errors import InvalidInput

REASON_MIN, REASON_MAX = 3, 500


# --- helpers -------------------------------------------------------------------------------


def _amount(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_AMOUNT:
        raise InvalidInput(field, f"must be an integer from 1 to {MAX_AMOUNT}")
    return value


def _signed_amount(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise InvalidInput(field, "must be a non-zero integer")
    _amount(field, abs(value))
    return value


def _reason(channel: str, reason: str, *, required: bool = False) -> str:
    """Staff corrections always carry a reason; partner corrections may."""
    reason = (reason or "").strip()
    if (required or channel in STAFF_CHANNELS) and len(reason) < REASON_MIN:
        raise errors.ReasonRequired()
    if len(reason) > REASON_MAX:
        raise errors.ReasonRequired()
    return reason


def _lock_customer(customer_id: int) -> Customer:
    return Customer.objects.select_for_update().get(pk=customer_id)


def _lock_stamp(stamp_id: int) -> Stamp:
    stamp = Stamp.objects.select_for_update().filter(pk=stamp_id, deleted_at__isnull=True).first()
    if stamp is None:
        raise errors.StampNotFound()
    return stamp


def _new_reference(prefix: str) -> str:
    return f"{prefix}_{uuid7().hex}"


def _start_of_today() -> dt.datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def _append(*, customer: Customer, column: str, delta: int, entry, after: str, insufficient):
    """Move `customer.<column>` by `delta` (never below zero) and save the ledger row `entry`
    that explains it, with `<after>` = the new value. Inside `audited()`.

    On PostgreSQL one statement does it all (ledger.statements); elsewhere (the SQLite demo)
    the ORM does the same under a row lock.
    """
    if statements.available():
        saved = statements.move(
            customer=customer, column=column, delta=delta, entry=entry, after=after
        )
        if saved is None:
            now = Customer.objects.filter(pk=customer.pk).values_list(column, flat=True).first()
            if now is None:
                raise InvalidInput("customer", "does not exist")
            setattr(customer, column, now)
            raise insufficient(now)
        saved.customer = customer
        return saved
    locked = _lock_customer(customer.pk)
    now = getattr(locked, column)
    if now + delta < 0:
        setattr(customer, column, now)
        raise insufficient(now)
    setattr(locked, column, now + delta)
    locked.save(update_fields=[column])
    setattr(entry, after, now + delta)
    entry.customer = locked
    entry.save()
    setattr(customer, column, now + delta)
    return entry


# --- stamps --------------------------------------------------------------------------------


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
        return Stamp.objects.create(
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


@transaction.atomic
def stamp_add(*, actor, channel: str, stamp: Stamp) -> Stamp:
    stamp = _lock_stamp(stamp.pk)
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
    stamp = _lock_stamp(stamp.pk)
    if stamp.count == 0:
        raise errors.StampCountZero()
    _check_daily_cap(stamp, channel, daily_cap)
    stamp.count -= 1
    with audited(actor=actor, channel=channel, reason=reason, operation="stamp_remove"):
        stamp.save(update_fields=["count"])
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
    stamp = _lock_stamp(stamp.pk)
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
    return stamp


@transaction.atomic
def stamp_deactivate(*, actor, channel: str, stamp: Stamp, reason: str = "") -> Stamp:
    """Deactivate and hide a stamp; its history stays."""
    stamp = _lock_stamp(stamp.pk)
    stamp.active = False
    stamp.deleted_at = timezone.now()
    with audited(actor=actor, channel=channel, reason=reason.strip(), operation="stamp_delete"):
        stamp.save(update_fields=["active", "deleted_at"])
    return stamp


# --- balance -------------------------------------------------------------------------------


def _balance_move(
    *,
    actor,
    channel: str,
    customer: Customer,
    store: Store | None,
    signed_amount: int,
    operation: str,
    reason: str = "",
    type: str = BalanceUpdate.TYPE_STAMPS,
) -> BalanceUpdate:
    if store is not None and store.merchant_id != customer.merchant_id:
        raise InvalidInput("store", "belongs to another merchant")
    entry = BalanceUpdate(
        customer=customer,
        merchant_id=customer.merchant_id,
        store=store,
        type=type,
        effect=BalanceUpdate.Effect.CREDIT if signed_amount > 0 else BalanceUpdate.Effect.DEBIT,
        amount=abs(signed_amount),
        reason=reason,
    )

    def insufficient(balance: int) -> errors.InsufficientBalance:
        return errors.InsufficientBalance(
            f"Insufficient balance: the customer has {balance}.", balance=balance
        )

    with audited(actor=actor, channel=channel, reason=reason, operation=operation):
        return _append(
            customer=customer,
            column="balance",
            delta=signed_amount,
            entry=entry,
            after="balance_after",
            insufficient=insufficient,
        )


@transaction.atomic
def balance_credit(
    *, actor, channel: str, customer: Customer, store: Store | None, amount: int
) -> BalanceUpdate:
    amount = _amount("amount", amount)
    return _balance_move(
        actor=actor,
        channel=channel,
        customer=customer,
        store=store,
        signed_amount=amount,
        operation="balance_credit",
    )


@transaction.atomic
def balance_debit(
    *, actor, channel: str, customer: Customer, store: Store | None, amount: int
) -> BalanceUpdate:
    amount = _amount("amount", amount)
    return _balance_move(
        actor=actor,
        channel=channel,
        customer=customer,
        store=store,
        signed_amount=-amount,
        operation="balance_debit",
    )


@transaction.atomic
def balance_adjust(
    *, actor, channel: str, customer: Customer, amount: int, reason: str
) -> BalanceUpdate:
    """A staff correction of the balance by a signed amount, as a new balance update."""
    amount = _signed_amount("amount", amount)
    reason = _reason(channel, reason, required=True)
    return _balance_move(
        actor=actor,
        channel=channel,
        customer=customer,
        store=None,
        signed_amount=amount,
        operation="balance_adjust",
        reason=reason,
    )


@transaction.atomic
def balance_update_cancel(
    *, actor, channel: str, balance_update: BalanceUpdate, reason: str = ""
) -> BalanceUpdate:
    """Reverse a balance update once. A credit already spent cannot be canceled."""
    reason = _reason(channel, reason)
    customer = _lock_customer(balance_update.customer_id)
    update = BalanceUpdate.objects.select_for_update().get(pk=balance_update.pk)
    if update.status == BalanceUpdate.Status.CANCELED:
        raise errors.AlreadyCanceled()
    if customer.balance - update.signed_amount < 0:
        raise errors.InsufficientBalance(
            f"Cannot cancel: the customer has {customer.balance} left of this "
            f"credit of {update.amount}; the balance may not go below 0.",
            balance=customer.balance,
        )
    customer.balance -= update.signed_amount
    update.status = BalanceUpdate.Status.CANCELED
    update.canceled_at = timezone.now()
    update.canceled_by = actor if getattr(actor, "pk", None) else None
    update.cancel_reason = reason
    with audited(actor=actor, channel=channel, reason=reason, operation="balance_cancel"):
        customer.save(update_fields=["balance"])
        update.save(update_fields=["status", "canceled_at", "canceled_by", "cancel_reason"])
    update.customer = customer
    return update


# --- points --------------------------------------------------------------------------------


def _points_move(
    *,
    actor,
    channel: str,
    customer: Customer,
    points: int,
    kind: str,
    operation: str,
    prefix: str,
    partner=None,
    redemption_id: str = "",
    reverts: PointTransaction | None = None,
    reason: str = "",
) -> PointTransaction:
    """Append a point transaction for `customer`."""
    entry = PointTransaction(
        customer=customer,
        merchant_id=customer.merchant_id,
        partner=partner,
        kind=kind,
        points=points,
        redemption_id=redemption_id,
        partner_transaction_id=_new_reference(prefix),
        reverts=reverts,
        reason=reason,
    )

    def insufficient(available: int) -> errors.InsufficientPoints:
        return errors.InsufficientPoints(
            f"User has {available} points, cannot deduct {-points}.", points=available
        )

    with audited(actor=actor, channel=channel, reason=reason, operation=operation):
        return _append(
            customer=customer,
            column="points",
            delta=points,
            entry=entry,
            after="points_after",
            insufficient=insufficient,
        )


def _constraint_name(exc: IntegrityError) -> str:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) or str(exc)


@transaction.atomic
def points_credit(
    *, actor, channel: str, customer: Customer, points: int, reason: str = "", partner=None
) -> PointTransaction:
    points = _amount("points", points)
    return _points_move(
        actor=actor,
        channel=channel,
        customer=customer,
        points=points,
        kind=PointTransaction.Kind.CREDIT,
        operation="points_credit",
        prefix="crd",
        partner=partner,
        reason=reason.strip(),
    )


@transaction.atomic
def points_adjust(
    *, actor, channel: str, customer: Customer, amount: int, reason: str
) -> PointTransaction:
    amount = _signed_amount("amount", amount)
    reason = _reason(channel, reason, required=True)
    return _points_move(
        actor=actor,
        channel=channel,
        customer=customer,
        points=amount,
        kind=PointTransaction.Kind.ADJUST,
        operation="points_adjust",
        prefix="adj",
        reason=reason,
    )


def point_deduct(
    *, actor, channel: str, partner, customer: Customer, points: int, redemption_id: str
) -> PointTransaction:
    """Deduct points for a redemption, at most once per (credential, redemption id).

    A refusal for insufficient points leaves no row, so the redemption id stays usable.
    """
    points = _amount("deductPoints", points)
    if not isinstance(redemption_id, str) or not 1 <= len(redemption_id) <= 100:
        raise InvalidInput("yggRedemptionId", "must be a string of 1 to 100 characters")

    def existing() -> PointTransaction | None:
        return PointTransaction.objects.filter(
            partner=partner, redemption_id=redemption_id, kind=PointTransaction.Kind.DEDUCT
        ).first()

    try:
        with transaction.atomic():
            # No look-up first: the UNIQUE constraint decides, and the duplicate path (rare)
            # reads the original only when the insert has been refused.
            return _points_move(
                actor=actor,
                channel=channel,
                customer=customer,
                points=-points,
                kind=PointTransaction.Kind.DEDUCT,
                operation="points_deduct",
                prefix="txn",
                partner=partner,
                redemption_id=redemption_id,
            )
    except errors.InsufficientPoints:
        # A repeat of a redemption that was deducted is a duplicate, even if the points are
        # now too few for a second one.
        if (original := existing()) is not None:
            raise errors.DuplicateRedemption(original) from None
        raise
    except IntegrityError as exc:
        # The redemption's UNIQUE constraint (whatever the engine calls it in its message):
        # the original exists now.
        if (original := existing()) is not None:
            raise errors.DuplicateRedemption(original) from exc
        raise


def point_deduction_revert(
    *, actor, channel: str, deduction: PointTransaction, reason: str = ""
) -> PointTransaction:
    """Give a deduction's points back, once (the UNIQUE `reverts` column holds that)."""
    reason = _reason(channel, reason)
    if deduction.kind != PointTransaction.Kind.DEDUCT:
        raise errors.NotADeduction()

    def existing() -> PointTransaction | None:
        return PointTransaction.objects.filter(reverts_id=deduction.pk).first()

    try:
        with transaction.atomic():
            locked = _lock_customer(deduction.customer_id)
            if (revert := existing()) is not None:
                raise errors.AlreadyReverted(revert)
            return _points_move(
                actor=actor,
                channel=channel,
                customer=locked,
                points=-deduction.points,
                kind=PointTransaction.Kind.REVERT,
                operation="points_revert",
                prefix="rvt",
                partner=deduction.partner,
                redemption_id=deduction.redemption_id,
                reverts=deduction,
                reason=reason,
            )
    except IntegrityError as exc:
        if "reverts_id" in _constraint_name(exc) and (revert := existing()) is not None:
            raise errors.AlreadyReverted(revert) from exc
        raise


@transaction.atomic
def point_deduction_confirm(
    *,
    actor,
    channel: str,
    deduction: PointTransaction,
    status: str,
    usd_amount=None,
    ygg_amount=None,
    price_ygg_usd=None,
    txn_confirmed: bool | None = None,
    txn_hash: str = "",
    initial_at: dt.datetime | None = None,
    pending_at: dt.datetime | None = None,
    claimed_at: dt.datetime | None = None,
    reverted_at: dt.datetime | None = None,
) -> PointTransaction:
    """Record the partner's final word on a deduction. Moves no points.

    A "reverted" confirmation for a deduction that was never reverted here is flagged for
    staff attention rather than acted on: moving points is for the revert endpoint alone.
    """
    if deduction.kind != PointTransaction.Kind.DEDUCT:
        raise errors.NotADeduction()
    if status not in (
        PointTransaction.Confirmation.CLAIMED,
        PointTransaction.Confirmation.REVERTED,
    ):
        raise InvalidInput("status", 'must be "claimed" or "reverted"')
    txn = PointTransaction.objects.select_for_update(no_key=True).get(pk=deduction.pk)
    reverted_here = PointTransaction.objects.filter(reverts_id=txn.pk).exists()
    txn.confirmation_status = status
    txn.confirmed_at = timezone.now()
    txn.usd_amount = usd_amount
    txn.ygg_amount = ygg_amount
    txn.price_ygg_usd = price_ygg_usd
    txn.txn_confirmed = txn_confirmed
    txn.txn_hash = txn_hash or ""
    txn.initial_at = initial_at
    txn.pending_at = pending_at
    txn.claimed_at = claimed_at
    txn.reverted_at = reverted_at
    txn.needs_attention = status == PointTransaction.Confirmation.REVERTED and not reverted_here
    with audited(actor=actor, channel=channel, operation="points_confirm"):
        txn.save(
            update_fields=[
                "confirmation_status",
                "confirmed_at",
                "usd_amount",
                "ygg_amount",
                "price_ygg_usd",
                "txn_confirmed",
                "txn_hash",
                "initial_at",
                "pending_at",
                "claimed_at",
                "reverted_at",
                "needs_attention",
            ]
        )
    return txn
