"""Balance services: credits and debits, the staff adjustment, the cancellation of an update."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.errors import (
    AmbiguousCustomer,
    CustomerNotFound,
    StoreNotFound,
    StoreOfAnotherMerchant,
)
from accounts.models import Customer, Store
from accounts.selectors import customer_for_partner, store_for_partner
from ledger import errors, events, statements
from ledger.models import BalanceUpdate
from ledger.services._common import (
    _amount,
    _append,
    _lock_customer,
    _one_statement,
    _reason,
    checked_signed_amount,
)
from loyalty import rows
from loyalty.audit import audited
from loyalty.errors import InvalidInput


@dataclass(frozen=True)
class AtStore:
    """Whom a partner's credit or debit names, unresolved: the customer of `merchant_id` whose
    email (case-insensitively) or member id is `user`, at the store `store_id` of that
    merchant; `merchant_ids` are the partner's. On PostgreSQL the move's own statement finds
    both (one round trip); its refusals, in the Balance API's order: StoreNotFound (also a
    store of a merchant the partner does not have), StoreOfAnotherMerchant,
    AmbiguousCustomer (the email of one customer and the member id of another),
    CustomerNotFound, then the move's own (InsufficientBalance)."""

    merchant_ids: frozenset[int]
    merchant_id: int
    user: str
    store_id: int

    def resolve(self) -> tuple[Customer, Store]:
        """Both through the selectors (the ORM path), with the same refusals in order."""
        store = store_for_partner(self.merchant_ids, self.store_id)
        if store is None:
            raise StoreNotFound()
        if store.merchant_id != self.merchant_id:
            raise StoreOfAnotherMerchant()
        customer = customer_for_partner(
            self.merchant_ids, merchant_id=self.merchant_id, user=self.user
        )
        if customer is None:
            raise CustomerNotFound()
        return customer, store


def _found_move(at: AtStore, entry: BalanceUpdate, signed_amount: int, insufficient):
    """The move of `entry` for the customer and store `at` names, found by its own statement."""
    email, member_id = at.user.strip().lower(), at.user.strip()
    moved = statements.move_found(
        customers=Customer,
        lookup={"merchant_id": at.merchant_id},
        either={"email": email, "member_id": member_id},
        guard=statements.Guard(Store, "merchant_id", at.store_id, at.merchant_id),
        column="balance",
        delta=signed_amount,
        entry=entry,
        after="balance_after",
    )
    if moved.guard is None or moved.guard not in at.merchant_ids:
        raise StoreNotFound()
    if moved.guard != at.merchant_id:
        raise StoreOfAnotherMerchant()
    if moved.matches and moved.matches > 1:
        raise AmbiguousCustomer()
    if moved.found is None:
        raise CustomerNotFound()
    if moved.entry is None:
        now = rows.first(Customer, id=moved.found)
        raise insufficient(now.balance if now is not None else 0)
    moved.entry.customer = moved.customer
    return moved.entry


def _balance_move(
    *,
    actor,
    channel: str,
    customer: Customer | None,
    store: Store | None,
    signed_amount: int,
    operation: str,
    reason: str = "",
    type: str = BalanceUpdate.TYPE_STAMPS,
    settle=None,
    at: AtStore | None = None,
) -> BalanceUpdate:
    if at is not None and (not statements.available() or not at.user.strip()):
        customer, store = at.resolve()  # the ORM path (and a blank user: nobody)
        at = None
    if store is not None and store.merchant_id != customer.merchant_id:
        raise InvalidInput("store", "belongs to another merchant")
    # With `at`, the statement writes the found customer's ids (ledger.statements).
    named = {"customer": customer, "store": store} if at is None else {"store_id": at.store_id}
    entry = BalanceUpdate(
        **named,
        merchant_id=customer.merchant_id if at is None else at.merchant_id,
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
        if at is not None:
            return _found_move(at, entry, signed_amount, insufficient)
        return _append(
            customer=customer,
            column="balance",
            delta=signed_amount,
            entry=entry,
            after="balance_after",
            insufficient=insufficient,
            settle=settle,
        )


@_one_statement
def balance_credit(
    *,
    actor,
    channel: str,
    customer: Customer | None = None,
    store: Store | None = None,
    amount: int,
    at: AtStore | None = None,
) -> BalanceUpdate:
    """With `at` instead of `customer` and `store`: the ones it names (see AtStore)."""
    amount = _amount("amount", amount)
    return _balance_move(
        actor=actor,
        channel=channel,
        customer=customer,
        store=store,
        at=at,
        signed_amount=amount,
        operation="balance_credit",
    )


@_one_statement
def balance_debit(
    *,
    actor,
    channel: str,
    customer: Customer | None = None,
    store: Store | None = None,
    amount: int,
    at: AtStore | None = None,
) -> BalanceUpdate:
    """With `at` instead of `customer` and `store`: the ones it names (see AtStore)."""
    amount = _amount("amount", amount)
    return _balance_move(
        actor=actor,
        channel=channel,
        customer=customer,
        store=store,
        at=at,
        signed_amount=-amount,
        operation="balance_debit",
    )


@_one_statement
def balance_adjust(
    *, actor, channel: str, customer: Customer, amount: int, reason: str, settle=None
) -> BalanceUpdate:
    """A staff correction of the balance by a signed amount, as a new balance update; with
    `settle` (ledger.statements.Settle, PostgreSQL), settling that row in the same statement."""
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
        settle=settle,
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
