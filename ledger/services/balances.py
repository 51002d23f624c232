"""Balance services: credits and debits, the staff adjustment, the cancellation of an update."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Customer, Store
from ledger import errors, events
from ledger.models import BalanceUpdate
from ledger.services._common import (
    _amount,
    _append,
    _lock_customer,
    _one_statement,
    _reason,
    checked_signed_amount,
)
from loyalty.audit import audited
from loyalty.errors import InvalidInput


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


@_one_statement
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


@_one_statement
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
    amount = checked_signed_amount("amount", amount)
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
    original = events.entry_object(update)
    customer.balance -= update.signed_amount
    customer.event_sequence += 1
    update.status = BalanceUpdate.Status.CANCELED
    update.canceled_at = timezone.now()
    update.canceled_by = actor if getattr(actor, "pk", None) else None
    update.cancel_reason = reason
    with audited(actor=actor, channel=channel, reason=reason, operation="balance_update_cancel"):
        customer.save(update_fields=["balance", "event_sequence"])
        update.save(update_fields=["status", "canceled_at", "canceled_by", "cancel_reason"])
        events.record(
            merchant_id=customer.merchant_id,
            customer_id=customer.pk,
            sequence=customer.event_sequence,
            data=events.entry_data(update, customer.balance, original=original),
        )
    update.customer = customer
    return update
