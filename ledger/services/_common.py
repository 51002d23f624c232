"""What every ledger service shares: input checks, row locks, references, the append.

See `ledger.services` for the rules every service follows.
"""

from __future__ import annotations

import datetime as dt
import functools

from django.db import transaction
from django.utils import timezone
from uuid6 import uuid7

from accounts.models import Customer
from ledger import errors, events, statements
from loyalty.audit import STAFF_CHANNELS
from loyalty.errors import InvalidInput
from loyalty.http.limits import MAX_AMOUNT, REASON_MAX, REASON_MIN


def _one_statement(service):
    """`transaction.atomic` for a service whose write is one statement on PostgreSQL (a move
    of ledger.statements): in autocommit that statement is its own transaction, and BEGIN
    and COMMIT would triple its round trips. Inside a caller's transaction it takes a
    savepoint as before, and on SQLite (the ORM's several writes) a transaction."""
    atomic = transaction.atomic(service)

    @functools.wraps(service)
    def run(*args, **kwargs):
        if statements.available() and not transaction.get_connection().in_atomic_block:
            return service(*args, **kwargs)
        return atomic(*args, **kwargs)

    return run


def _amount(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_AMOUNT:
        raise InvalidInput(field, f"must be an integer from 1 to {MAX_AMOUNT}")
    return value


def checked_signed_amount(field: str, value: int) -> int:
    """A non-zero integer whose size is 1 to MAX_AMOUNT (adjustments; approvals check it before
    holding one)."""
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


def _new_reference(prefix: str) -> str:
    return f"{prefix}_{uuid7().hex}"


def _start_of_today() -> dt.datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def _append(
    *,
    customer: Customer,
    column: str,
    delta: int,
    entry,
    after: str,
    insufficient,
    original=None,
    settle: statements.Settle | None = None,
):
    """Move `customer.<column>` by `delta` (never below zero) and save the ledger row `entry`
    that explains it, with `<after>` = the new value, and the event of the move (with
    `original` in its data, when given). Inside `audited()`.

    On PostgreSQL one statement does it all (ledger.statements), with `settle` settled by it
    too (errors.ClaimTaken when its row no longer matched: nothing moved); elsewhere (the
    SQLite demo) the ORM does the same under a row lock, and takes no `settle`.
    """
    if statements.available():
        saved = statements.move(
            customer=customer,
            column=column,
            delta=delta,
            entry=entry,
            after=after,
            original=original,
            settle=settle,
        )
        if saved is None and settle is not None and not settle.taken:
            raise errors.ClaimTaken()
        if saved is None:
            now = Customer.objects.filter(pk=customer.pk).values_list(column, flat=True).first()
            if now is None:
                raise InvalidInput("customer", "does not exist")
            setattr(customer, column, now)
            raise insufficient(now)
        saved.customer = customer
        return saved
    if settle is not None:
        raise NotImplementedError("a settled move needs PostgreSQL (ledger.statements)")
    locked = _lock_customer(customer.pk)
    now = getattr(locked, column)
    if now + delta < 0:
        setattr(customer, column, now)
        raise insufficient(now)
    setattr(locked, column, now + delta)
    locked.event_sequence += 1
    locked.save(update_fields=[column, "event_sequence"])
    setattr(entry, after, now + delta)
    entry.customer = locked
    entry.save()
    events.record(
        merchant_id=locked.merchant_id,
        customer_id=locked.pk,
        sequence=locked.event_sequence,
        data=events.entry_data(entry, now + delta, original=original),
    )
    setattr(customer, column, now + delta)
    customer.event_sequence = locked.event_sequence
    return entry
