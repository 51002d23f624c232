"""Reads of the ledger, scoped by who asks. A partner sees only its merchants' rows (the
`merchant_ids` its authentication read) and, for point deductions, only those made with its
own credential."""

from __future__ import annotations

from ledger.models import BalanceUpdate, PointTransaction, Stamp, StampCard
from loyalty import rows


def stamp_for_partner(merchant_ids: frozenset[int], stamp_id: int) -> Stamp | None:
    """A live stamp of one of the partner's merchants (by primary key, without the query
    compiler: every Stamp API call starts here)."""
    stamp = rows.first(Stamp, id=stamp_id)
    if stamp is None or stamp.deleted_at is not None:
        return None
    return stamp if stamp.merchant_id in merchant_ids else None


def stamp_card_for_partner(merchant_ids: frozenset[int], card_id: int) -> StampCard | None:
    return StampCard.objects.filter(pk=card_id, merchant_id__in=merchant_ids).first()


def balance_update_for_partner(
    merchant_ids: frozenset[int], update_id: int
) -> BalanceUpdate | None:
    return BalanceUpdate.objects.filter(pk=update_id, merchant_id__in=merchant_ids).first()


def deduction_for_partner(
    partner, *, partner_transaction_id: str = "", redemption_id: str = ""
) -> PointTransaction | None:
    rows = PointTransaction.objects.select_related("customer").filter(
        partner=partner, kind=PointTransaction.Kind.DEDUCT
    )
    if partner_transaction_id:
        rows = rows.filter(partner_transaction_id=partner_transaction_id)
    if redemption_id:
        rows = rows.filter(redemption_id=redemption_id)
    if not (partner_transaction_id or redemption_id):
        return None
    return rows.first()
