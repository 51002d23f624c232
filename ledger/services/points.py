"""Point services: credits, the staff adjustment, partner deductions, their reverts and
confirmations."""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import CustomerNotFound
from accounts.models import Customer
from ledger import errors, events, statements
from ledger.models import PointTransaction
from ledger.services._common import (
    _amount,
    _append,
    _lock_customer,
    _new_reference,
    _one_statement,
    _reason,
    checked_signed_amount,
)
from loyalty.audit import audited
from loyalty.db import Claim
from loyalty.db import claim as db_claim
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
    settle=None,
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
            settle=settle,
        )


def _constraint_name(exc: IntegrityError) -> str:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) or str(exc)


@_one_statement
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


@_one_statement
def points_adjust(
    *, actor, channel: str, customer: Customer, amount: int, reason: str, settle=None
) -> PointTransaction:
    """A staff correction of the points by a signed amount, as a new point transaction; with
    `settle` (ledger.statements.Settle, PostgreSQL), settling that row in the same statement."""
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
        settle=settle,
    )


def point_deduct(
    *,
    actor,
    channel: str,
    partner,
    points: int,
    redemption_id: str,
    customer: Customer | None = None,
    address: str | None = None,
    claim: Claim | None = None,
) -> PointTransaction:
    """Deduct points for a redemption, at most once per (credential, redemption id), from
    `customer`, or from the customer of the partner's primary merchant with the wallet
    `address` (see `_deduct_by_address`, which also takes the `claim`).

    A refusal for insufficient points leaves no row, so the redemption id stays usable.
    """
    points = _amount("points", points)
    if not isinstance(redemption_id, str) or not 1 <= len(redemption_id) <= 100:
        raise InvalidInput("redemption_id", "must be a string of 1 to 100 characters")
    if customer is None:
        return _deduct_by_address(
            actor=actor,
            channel=channel,
            partner=partner,
            address=address,
            points=points,
            redemption_id=redemption_id,
            claim=claim,
        )
    if claim is not None and not db_claim(claim):
        raise errors.ClaimTaken()

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


def _deduct_by_address(
    *,
    actor,
    channel: str,
    partner,
    address: str | None,
    points: int,
    redemption_id: str,
    claim: Claim | None,
) -> PointTransaction:
    """`point_deduct` (inputs checked) for the customer of the partner's primary merchant
    with this wallet address (case-insensitive), found by the deduction's own statement;
    with `claim`, the claim row is inserted by it too and the deduction happens only if the
    claim is new.

    On PostgreSQL outside a transaction this is one statement in autocommit: a refusal for
    insufficient points or an unknown address still commits the claim, and a duplicate
    redemption (the statement fails on the UNIQUE constraint) inserts the claim alone
    before it is refused. Raises ClaimTaken, CustomerNotFound, InsufficientPoints or
    DuplicateRedemption.
    """
    wallet = (address or "").strip().lower()
    if not wallet:  # customers without a wallet have none: never look them up by ""
        if claim is not None and not db_claim(claim):
            raise errors.ClaimTaken()
        raise CustomerNotFound()
    if not statements.available():  # the SQLite demo: the same steps through the ORM
        if claim is not None and not db_claim(claim):
            raise errors.ClaimTaken()
        customer = Customer.objects.filter(
            merchant_id=partner.primary_merchant_id, wallet_address=wallet
        ).first()
        if customer is None:
            raise CustomerNotFound()
        return point_deduct(  # the claim is spent already
            actor=actor,
            channel=channel,
            partner=partner,
            customer=customer,
            points=points,
            redemption_id=redemption_id,
        )

    def existing() -> PointTransaction | None:
        return PointTransaction.objects.filter(
            partner=partner, redemption_id=redemption_id, kind=PointTransaction.Kind.DEDUCT
        ).first()

    entry = PointTransaction(
        partner=partner,
        kind=PointTransaction.Kind.DEDUCT,
        points=-points,
        redemption_id=redemption_id,
        partner_transaction_id=_new_reference("txn"),
    )
    try:
        # A savepoint only inside a caller's transaction (an Idempotency-Key's): in
        # autocommit a failed statement leaves nothing to roll back.
        scope = transaction.atomic if transaction.get_connection().in_atomic_block else nullcontext
        with scope(), audited(actor=actor, channel=channel, operation="point_deduct"):
            moved = statements.move_found(
                customers=Customer,
                lookup={"merchant_id": partner.primary_merchant_id, "wallet_address": wallet},
                column="points",
                delta=-points,
                entry=entry,
                after="points_after",
                claim=claim,
            )
    except IntegrityError as exc:
        if claim is not None and not db_claim(claim):
            raise errors.ClaimTaken() from exc
        if (original := existing()) is not None:
            raise errors.DuplicateRedemption(original) from exc
        raise
    if claim is not None and not claim.taken:
        raise errors.ClaimTaken()
    if moved.found is None:
        raise CustomerNotFound()
    if moved.entry is None:
        if (original := existing()) is not None:
            raise errors.DuplicateRedemption(original)
        now = Customer.objects.filter(pk=moved.found).values_list("points", flat=True).first()
        raise errors.InsufficientPoints(
            f"User has {now} points, cannot deduct {points}.", points=now
        )
    moved.entry.customer = moved.customer
    return moved.entry


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
