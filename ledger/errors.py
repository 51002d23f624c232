"""Domain errors of the ledger: one class per business failure, each with a stable code."""

from loyalty.errors import DomainError, NotFound
from loyalty.http.limits import REASON_MAX, REASON_MIN


class StampNotFound(NotFound):
    code = "stamp_not_found"
    message = "Stamp not found."


class StampCountZero(DomainError):
    code = "stamp_count_zero"
    message = "The stamp count is already 0."


class StampInactive(DomainError):
    code = "stamp_inactive"
    message = "The stamp is inactive."


class StampOutOfPeriod(DomainError):
    code = "stamp_out_of_period"
    message = "The stamp is outside its validity period."


class StampAtMax(DomainError):
    code = "stamp_at_max"
    message = "The stamp count is already at its maximum."


class RewardAlreadyRedeemed(DomainError):
    code = "reward_redeemed"
    message = "The reward of this stamp has already been redeemed."


class CorrectionLimitReached(DomainError):
    code = "correction_limit_reached"
    message = "The daily limit of corrections for this stamp has been reached."


class ReasonRequired(DomainError):
    code = "reason_required"
    kind = "invalid"
    field = "reason"
    message = f"A correction needs a reason of {REASON_MIN} to {REASON_MAX} characters."


class BalanceUpdateNotFound(NotFound):
    code = "balance_update_not_found"
    message = "Balance update not found."


class InsufficientBalance(DomainError):
    code = "insufficient_balance"
    message = "The balance may not go below 0."


class AlreadyCanceled(DomainError):
    code = "already_canceled"
    message = "This balance update has already been canceled."


class InsufficientPoints(DomainError):
    code = "insufficient_points"
    message = "Not enough points."


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    message = "Point transaction not found."


class NotADeduction(DomainError):
    code = "not_a_deduction"
    message = "Only a point deduction can be reverted."


class DuplicateRedemption(DomainError):
    """The redemption id was already deducted; `original` is that deduction."""

    code = "duplicate_redemption"
    kind = "conflict"
    message = "This redemption has already been processed."

    def __init__(self, original) -> None:
        super().__init__(original_id=original.pk)
        self.original = original


class AlreadyReverted(DomainError):
    """The deduction was already reverted; `revert` is the revert row."""

    code = "already_reverted"
    kind = "conflict"
    message = "This deduction has already been reverted."

    def __init__(self, revert) -> None:
        super().__init__(revert_id=revert.pk)
        self.revert = revert


# --- approvals (README: Approvals and staff limits) ------------------------------------------


class ApprovalPermissionDenied(DomainError):
    code = "permission_denied"
    kind = "forbidden"
    message = "You do not have permission to decide approvals."


class NotRequester(DomainError):
    code = "permission_denied"
    kind = "forbidden"
    message = "Only the requester may cancel an approval request."


class SelfApproval(DomainError):
    code = "self_approval"
    kind = "forbidden"
    message = "Nobody may decide their own approval request."


class AlreadyDecided(DomainError):
    code = "already_decided"
    kind = "conflict"
    message = "This approval request has already been decided."


class ApprovalExpired(DomainError):
    code = "approval_expired"
    kind = "conflict"
    message = "This approval request has expired."


class DecisionReasonRequired(ReasonRequired):
    message = f"A decision needs a reason of {REASON_MIN} to {REASON_MAX} characters."


class ClaimTaken(DomainError):
    """The move's claim row (ledger.statements.Claim) existed already: nothing moved."""

    code = "claim_taken"
    kind = "conflict"
    message = "This request was already used."
