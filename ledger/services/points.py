"""Point services: credits, the staff adjustment, partner deductions, their reverts and
confirmations."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Customer
from ledger import errors, events
from ledger.models import PointTransaction
from ledger.services._common import (
    _amount,
    _append,
    _lock_customer,
    _new_reference,
    _reason,
    checked_signed_amount,
)
from loyalty.audit import audited
from loyalty.errors import InvalidInput


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
    original: dict | None = None,
) -> PointTransaction:
    """Append a point transaction for `customer` (`original`: a revert's deduction, for the
    event)."""
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
            original=original,
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
    amount = checked_signed_amount("amount", amount)
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
    points = _amount("points", points)
    if not isinstance(redemption_id, str) or not 1 <= len(redemption_id) <= 100:
        raise InvalidInput("redemption_id", "must be a string of 1 to 100 characters")

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
                operation="point_deduct",
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
                operation="point_deduction_revert",
                prefix="rvt",
                partner=deduction.partner,
                redemption_id=deduction.redemption_id,
                reverts=deduction,
                reason=reason,
                original=events.entry_object(deduction),
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
    # The customer's row first (the lock order of every move): it counts the event.
    sequence = events.next_sequence(deduction.customer_id)
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
    with audited(actor=actor, channel=channel, operation="point_deduction_confirm"):
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
        events.record(
            merchant_id=txn.merchant_id,
            customer_id=txn.customer_id,
            sequence=sequence,
            data=events.confirmed_data(txn),
        )
    return txn
