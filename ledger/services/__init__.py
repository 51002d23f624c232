"""Ledger services: the only code that changes a stamp count, a balance, points or a status.

One module per domain (`stamps`, `balances`, `points`) over shared checks (`_common`);
this package re-exports every service, so callers write `services.stamp_remove(...)`.

Every function is one business operation: keyword-only, typed, one short transaction at
READ COMMITTED. It locks the rows it changes (customer first, then the ledger row) and
leaves the last word to the database's constraints. Each takes the actor and the channel,
and corrections take a reason; history rows carry all three (see loyalty.audit).
"""

from ledger.services._common import REASON_MAX, REASON_MIN

# An input check, not a service (not in __all__): approvals check a held adjustment with it.
from ledger.services._common import checked_signed_amount as checked_signed_amount

# Whom a partner's credit or debit names, unresolved (not a service either).
from ledger.services.balances import AtStore as AtStore
from ledger.services.balances import (
    balance_adjust,
    balance_credit,
    balance_debit,
    balance_update_cancel,
)
from ledger.services.points import (
    point_deduct,
    point_deduction_confirm,
    point_deduction_revert,
    points_adjust,
    points_credit,
)
from ledger.services.stamps import (
    stamp_add,
    stamp_card_create,
    stamp_create,
    stamp_deactivate,
    stamp_remove,
    stamp_set_count,
    stamp_update,
)

__all__ = [
    "REASON_MAX",
    "REASON_MIN",
    "balance_adjust",
    "balance_credit",
    "balance_debit",
    "balance_update_cancel",
    "point_deduct",
    "point_deduction_confirm",
    "point_deduction_revert",
    "points_adjust",
    "points_credit",
    "stamp_add",
    "stamp_card_create",
    "stamp_create",
    "stamp_deactivate",
    "stamp_remove",
    "stamp_set_count",
    "stamp_update",
]
