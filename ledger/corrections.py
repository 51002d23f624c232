"""The corrections registry: every staff correction once, and what each surface derives from it.

A staff correction is a service that fixes a mistake with a reason: take a stamp off, cancel a
balance update, revert a point deduction, adjust a balance or points. Each entry names it once:
its kind (the name approvals, staff limits and correction batches key on), the service (whose
name is the operation its history rows record), the Django permission that allows it, the
model it targets, its labels, whether it takes an amount, and its size for policies and limits.
The admin's actions and buttons, the staff API's correction endpoints, the Support role, the
dashboard's kinds and the Stamp API's daily cap are all built from this module; none of them
names a correction on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Model

from accounts.models import Customer
from ledger import services
from ledger.models import BalanceUpdate, PointTransaction, Stamp


@dataclass(frozen=True)
class Correction:
    kind: str  # deduct_stamp, ...: the approvals, limits and batches vocabulary
    service: Callable[..., Model]
    target_arg: str  # the keyword the service takes the target as
    target: type[Model]  # what is corrected (for adjustments: the customer)
    recorded_on: type[Model]  # the ledger model whose history has one row per correction
    permission: str  # "<app_label>.<codename>"
    label: str  # the action: "Remove one stamp"
    done: str  # what was done, in a result message: "Removed one stamp"
    recorded: str  # a correction of this kind, as a count or chart names it: "Stamp removed"
    size: Callable[[Model, int | None], int]  # section "size" of approvals and limits
    # Whether the correction could succeed on `target` now (as far as its own row tells):
    # surfaces offer it only then. The service still decides, under its locks.
    available: Callable[[Model], bool] = lambda target: True
    takes_amount: bool = False
    # The service answers a new ledger row (the revert, the adjustment), not the target.
    creates: bool = False
    # The service is one statement on PostgreSQL and takes `settle` (ledger.statements.Settle):
    # a row settled by that statement (ledger.batches: a batch row with its move).
    settles: bool = False

    @property
    def operation(self) -> str:
        """What its history rows record in `operation`: the service's own name."""
        return self.service.__name__

    @property
    def codename(self) -> str:
        return self.permission.split(".", 1)[1]

    def apply(
        self, *, actor, channel: str, target: Model, reason: str, amount: int | None = None,
        settle=None,
    ):  # fmt: skip
        """Run the service on `target`; answers what the service answers (see `creates`)."""
        arguments = {self.target_arg: target, "reason": reason}
        if self.takes_amount:
            arguments["amount"] = amount
        if settle is not None:
            if not self.settles:
                raise TypeError(f"{self.kind} settles no row")
            arguments["settle"] = settle
        return self.service(actor=actor, channel=channel, **arguments)


def _cancelable(update: BalanceUpdate) -> bool:
    """Not canceled yet, and canceling would not take the customer's balance below 0."""
    return (
        update.status == BalanceUpdate.Status.SUCCESS
        and update.customer.balance - update.signed_amount >= 0
    )


def _revertible(txn: PointTransaction) -> bool:
    """A deduction not reverted yet."""
    if txn.kind != PointTransaction.Kind.DEDUCT:
        return False
    return not PointTransaction.objects.filter(reverts_id=txn.pk).exists()


CORRECTIONS: tuple[Correction, ...] = (
    Correction(
        kind="deduct_stamp",
        service=services.stamp_remove,
        target_arg="stamp",
        target=Stamp,
        recorded_on=Stamp,
        permission="ledger.remove_stamp",
        label="Remove one stamp",
        done="Removed one stamp",
        recorded="Stamp removed",
        size=lambda stamp, amount: 1,
        available=lambda stamp: stamp.count > 0 and stamp.deleted_at is None,
    ),
    Correction(
        kind="cancel_balance_update",
        service=services.balance_update_cancel,
        target_arg="balance_update",
        target=BalanceUpdate,
        recorded_on=BalanceUpdate,
        permission="ledger.cancel_balanceupdate",
        label="Cancel balance updates",
        done="Canceled",
        recorded="Balance update canceled",
        size=lambda update, amount: update.amount,
        available=lambda update: _cancelable(update),
    ),
    Correction(
        kind="revert_points",
        service=services.point_deduction_revert,
        target_arg="deduction",
        target=PointTransaction,
        recorded_on=PointTransaction,
        permission="ledger.revert_pointtransaction",
        label="Revert point deductions",
        done="Reverted",
        recorded="Deduction reverted",
        size=lambda deduction, amount: abs(deduction.points),  # stored negative
        available=lambda txn: _revertible(txn),
        creates=True,
    ),
    Correction(
        kind="adjust_balance",
        service=services.balance_adjust,
        target_arg="customer",
        target=Customer,
        recorded_on=BalanceUpdate,
        permission="accounts.adjust_balance_customer",
        label="Adjust balance",
        done="Adjusted the balance",
        recorded="Balance adjusted",
        size=lambda customer, amount: abs(amount),
        takes_amount=True,
        creates=True,
        settles=True,
    ),
    Correction(
        kind="adjust_points",
        service=services.points_adjust,
        target_arg="customer",
        target=Customer,
        recorded_on=PointTransaction,
        permission="accounts.adjust_points_customer",
        label="Adjust points",
        done="Adjusted the points",
        recorded="Points adjusted",
        size=lambda customer, amount: abs(amount),
        takes_amount=True,
        creates=True,
        settles=True,
    ),
)
BY_KIND: dict[str, Correction] = {c.kind: c for c in CORRECTIONS}
PERMISSIONS: list[str] = [c.permission for c in CORRECTIONS]


def for_target(model: type[Model]) -> tuple[Correction, ...]:
    """The corrections a page or endpoint of `model` offers, in registry order."""
    return tuple(c for c in CORRECTIONS if c.target is model)


@dataclass(frozen=True)
class Recorded:
    """A kind of correction as history records it: an operation on a ledger model's table."""

    operation: str
    model: type[Model]
    label: str


# The one correction only partners make: the Stamp API's `update` setting a count. It has no
# staff surface, but the dashboard counts it and the Stamp API's daily cap counts it with the
# removals.
PARTNER_ONLY = (Recorded(services.stamp_set_count.__name__, Stamp, "Stamp count set"),)


def recorded_kinds() -> list[Recorded]:
    """Every correction as history records it, grouped by ledger model in registry order."""
    kinds = [Recorded(c.operation, c.recorded_on, c.recorded) for c in CORRECTIONS]
    kinds += PARTNER_ONLY
    order = list(dict.fromkeys(c.recorded_on for c in CORRECTIONS))
    return sorted(kinds, key=lambda kind: order.index(kind.model))
