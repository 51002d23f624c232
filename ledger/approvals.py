"""Four-eyes approvals and staff limits over the corrections registry (README: Approvals).

Every staff surface applies a correction through `submit`: when a policy's threshold or the
actor's limit holds it, nothing moves and an `Approval` is stored with the correction's
parameters and preview; otherwise it is applied at once. A held correction is applied later
by `approve`, through the same service, attributed to the requester with the approver
recorded (`loyalty.audit.approving`); `reject`, `cancel` and `expire_due` end it otherwise.

What holds a correction, and the counters that make limits hold exactly under concurrency,
are `ledger.limits`: `submit` moves the counters in the transaction that applies the
correction. An approval's row lock makes each decision happen once.

A little over 400 lines: one request's whole life (submit, decide, expire, its wire shape),
read best in one place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from accounts.models import Customer
from ledger import corrections, errors, events, limits, services
from ledger.limits import (  # noqa: F401  (the surfaces manage policies and limits through here too)
    MANAGE_LIMIT,
    MANAGE_POLICY,
    can_manage,
    setting_delete,
    setting_save,
)
from ledger.models import Approval, Stamp
from loyalty.audit import Channel, approving, audited
from loyalty.errors import DomainError
from loyalty.http.limits import REASON_MAX, REASON_MIN
from loyalty.preview import dry_run

APPROVE = "ledger.approve_correction"

# The audited operations of an approval's steps (ledger.events.TYPES maps them to types).
OPERATIONS = (
    "approval_request",
    "approval_approve",
    "approval_reject",
    "approval_cancel",
    "approval_expire",
    "approval_fail",
)


def ttl_seconds() -> int:
    return int(settings.APPROVAL_TTL_SECONDS)


@dataclass(frozen=True)
class Submitted:
    """What `submit` did: `result` is the service's answer when it applied the correction;
    `approval` the held request otherwise."""

    result: object | None = None
    approval: Approval | None = None

    @property
    def held(self) -> bool:
        return self.approval is not None


# --- input -----------------------------------------------------------------------------------


def checked_reason(reason, error=errors.ReasonRequired) -> str:
    """A staff reason of 3 to 500 characters (stripped), or `error` (requests, decisions and
    batches)."""
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise error()
    return reason


def _amount(correction: corrections.Correction, amount):
    if not correction.takes_amount:
        return None
    return services.checked_signed_amount("amount", amount)


def _user(actor):
    """The staff user limits and approvals name, or None (a command without a user)."""
    return actor if getattr(actor, "pk", None) is not None else None


def needs_approval(correction, *, actor, target: Model, amount=None) -> str | None:
    """Why `actor`'s correction of `target` would be held now (`held_because`), or None.
    Consumes nothing (for previews); `submit` decides for real."""
    user = _user(actor)
    if user is None:
        return None
    amount = _amount(correction, amount)
    size = correction.size(target, amount)
    why = limits.static_hold(correction, user=user, merchant_id=target.merchant_id, size=size)
    if why is not None:
        return why
    return limits.over_today(user, correction.kind, size)


# --- effect: before and after ----------------------------------------------------------------


# Kinds that approvals hold beyond the registry's (section 9's batches), by `register`.
_REGISTERED: dict[str, object] = {}


def register(correction) -> None:
    """Let approvals hold and later apply a correction that is not in `ledger.corrections`
    (a batch): an object with the registry's `kind`, `target`, `creates`, `size(target,
    amount)` and `apply(actor=, channel=, target=, reason=, amount=)`."""
    _REGISTERED[correction.kind] = correction


def correction_of(kind: str):
    """The correction an approval of `kind` applies."""
    return corrections.BY_KIND.get(kind) or _REGISTERED[kind]


def _measured(correction, target: Model) -> tuple[type[Model], int, str] | None:
    """The value a correction moves: (model, id, field); None for a kind that moves many."""
    if correction.target is Stamp:
        return Stamp, target.pk, "count"
    if isinstance(target, Customer):
        customer_id = target.pk
    elif (customer_id := getattr(target, "customer_id", None)) is None:
        return None
    field = "points" if correction.kind in ("revert_points", "adjust_points") else "balance"
    return Customer, customer_id, field


def _value(model, pk: int, field: str) -> int:
    return model.objects.filter(pk=pk).values_list(field, flat=True).get()


def _apply_measured(correction, *, actor, channel, target, reason, amount) -> tuple[object, dict]:
    """Apply the correction; answers the service's result and its effect on the value."""
    measured = _measured(correction, target)
    if measured is None:
        result = correction.apply(
            actor=actor, channel=channel, target=target, reason=reason, amount=amount
        )
        return result, {}
    model, pk, field = measured
    before = _value(model, pk, field)
    result = correction.apply(
        actor=actor, channel=channel, target=target, reason=reason, amount=amount
    )
    effect = {
        "model": model._meta.label_lower,
        "id": pk,
        "field": field,
        "before": before,
        "after": _value(model, pk, field),
    }
    return result, effect


# --- the wire shape --------------------------------------------------------------------------


def status_of(approval: Approval, now: dt.datetime | None = None) -> str:
    """The status as the wire reads it: a pending request past its expiry reads `expired`
    (the worker then records it so)."""
    now = now or timezone.now()
    if approval.status == Approval.Status.PENDING and approval.expires_at <= now:
        return Approval.Status.EXPIRED
    return approval.status


def serialize(approval: Approval) -> dict:
    """The contract's `{"approval": {...}}` object (without the wrapper)."""
    decided_by = approval.decided_by
    return {
        "id": approval.pk,
        "status": status_of(approval),
        "kind": approval.kind,
        "merchant": approval.merchant_id,
        "target": {"model": approval.target_model, "id": approval.target_id},
        "size": approval.size,
        "amount": approval.amount,
        "reason": approval.reason,
        "requested_by": approval.requested_by.get_username(),
        "channel": approval.channel,
        "held_because": approval.held_because,
        "created": events.iso_utc(approval.created),
        "expires_at": events.iso_utc(approval.expires_at),
        "decided_by": decided_by.get_username() if decided_by is not None else None,
        "decided_at": events.iso_utc(approval.decided_at),
        "decision_reason": approval.decision_reason or None,
        "result": approval.result,
        "preview": approval.preview,
    }


def _record(approval: Approval) -> None:
    """The approval's event (inside the step's `audited()` block)."""
    events.record(
        merchant_id=approval.merchant_id,
        customer_id=None,
        sequence=None,
        data={"approval": serialize(approval)},
    )


def _save(approval: Approval, *, actor, channel: str, reason: str, operation: str) -> Approval:
    with audited(actor=actor, channel=channel, reason=reason, operation=operation):
        approval.save()
        _record(approval)
    return approval


# --- submit ----------------------------------------------------------------------------------


def submit(
    correction: corrections.Correction,
    *,
    actor,
    channel: str,
    target: Model,
    reason: str,
    amount: int | None = None,
) -> Submitted:
    """Apply `correction` to `target` now, or hold it for approval (nothing moves then).

    A correction the service would refuse now is refused (its DomainError), not held.
    """
    user = _user(actor)
    if user is None:  # nobody to approve against (a command run without a user)
        result = correction.apply(
            actor=actor, channel=channel, target=target, reason=reason, amount=amount
        )
        return Submitted(result=result)
    reason = checked_reason(reason)
    amount = _amount(correction, amount)
    size = correction.size(target, amount)
    why = limits.static_hold(correction, user=user, merchant_id=target.merchant_id, size=size)
    if why is None:
        try:
            with transaction.atomic():
                limits.count(user, correction.kind, size)
                result = correction.apply(
                    actor=actor, channel=channel, target=target, reason=reason, amount=amount
                )
            return Submitted(result=result)
        except limits.Held as held:
            why = held.why
    return Submitted(
        approval=_request(
            correction,
            user=user,
            channel=channel,
            target=target,
            reason=reason,
            amount=amount,
            size=size,
            why=why,
        )
    )


@transaction.atomic
def _request(correction, *, user, channel, target, reason, amount, size, why) -> Approval:
    # The preview runs the real service and rolls it back: a refusal now is raised now. On a
    # copy of the target: the service moves the instance it is given, and nothing committed.
    copy = type(target).objects.get(pk=target.pk)
    _result, effect = dry_run(
        lambda: _apply_measured(
            correction, actor=user, channel=channel, target=copy, reason=reason, amount=amount
        )
    )
    now = timezone.now()
    approval = Approval(
        kind=correction.kind,
        merchant_id=target.merchant_id,
        target_model=correction.target._meta.label_lower,
        target_id=target.pk,
        size=size,
        amount=amount,
        reason=reason,
        requested_by=user,
        channel=channel,
        held_because=why,
        created=now,
        expires_at=now + dt.timedelta(seconds=ttl_seconds()),
        preview=effect,
    )
    return _save(approval, actor=user, channel=channel, reason=reason, operation="approval_request")


# --- deciding --------------------------------------------------------------------------------


def _locked_pending(approval: Approval, now: dt.datetime) -> Approval:
    """The approval, row-locked for this transaction, if it may still be decided."""
    locked = (
        Approval.objects.select_for_update(of=("self",))
        .select_related("requested_by")
        .get(pk=approval.pk)
    )
    if status_of(locked, now) == Approval.Status.EXPIRED:  # recorded so by the worker or not
        raise errors.ApprovalExpired()
    if locked.status != Approval.Status.PENDING:
        raise errors.AlreadyDecided(f"This approval request is already {locked.status}.")
    return locked


def _check_decider(approval: Approval, actor) -> None:
    """Approve and reject: the permission first, then the four eyes."""
    if not actor.has_perm(APPROVE):
        raise errors.ApprovalPermissionDenied()
    if approval.requested_by_id == actor.pk:
        raise errors.SelfApproval()


def _target(approval: Approval, correction) -> Model:
    return correction.target.objects.get(pk=approval.target_id)


@transaction.atomic
def approve(approval: Approval, *, actor, channel: str, reason: str) -> Approval:
    """Apply the held correction as of now, through the same service; attributed to the
    requester, with the approver recorded. A refusal now ends it `failed`, nothing moved."""
    _check_decider(approval, actor)
    reason = checked_reason(reason, errors.DecisionReasonRequired)
    now = timezone.now()
    approval = _locked_pending(approval, now)
    correction = correction_of(approval.kind)
    requester = approval.requested_by
    try:
        with transaction.atomic():
            # Applied corrections count toward the requester's day, approved ones too; the
            # approval itself is the permission to go beyond the limits.
            limits.count(requester, approval.kind, approval.size, enforce=False)
            with approving(approver=actor, approval_id=approval.pk, reason=reason):
                result, effect = _apply_measured(
                    correction,
                    actor=requester,
                    channel=approval.channel,
                    target=_target(approval, correction),
                    reason=approval.reason,
                    amount=approval.amount,
                )
        approval.status = Approval.Status.APPROVED
        # The value moved, and the row the service answered (for adjustments and reverts the
        # new ledger row).
        approval.result = dict(effect)
        if isinstance(result, Model):
            approval.result["object"] = {"model": result._meta.label_lower, "id": result.pk}
        operation = "approval_approve"
    except DomainError as exc:
        approval.status = Approval.Status.FAILED
        approval.result = {"code": exc.code, "message": exc.message}
        operation = "approval_fail"
    approval.decided_by = actor
    approval.decided_at = now
    approval.decision_reason = reason
    return _save(approval, actor=actor, channel=channel, reason=reason, operation=operation)


@transaction.atomic
def reject(approval: Approval, *, actor, channel: str, reason: str) -> Approval:
    _check_decider(approval, actor)
    reason = checked_reason(reason, errors.DecisionReasonRequired)
    now = timezone.now()
    approval = _locked_pending(approval, now)
    approval.status = Approval.Status.REJECTED
    approval.decided_by = actor
    approval.decided_at = now
    approval.decision_reason = reason
    return _save(approval, actor=actor, channel=channel, reason=reason, operation="approval_reject")


@transaction.atomic
def cancel(approval: Approval, *, actor, channel: str, reason: str = "") -> Approval:
    """The requester withdraws the request (a reason is optional)."""
    if approval.requested_by_id != getattr(actor, "pk", None):
        raise errors.NotRequester()
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise errors.DecisionReasonRequired()
    now = timezone.now()
    approval = _locked_pending(approval, now)
    approval.status = Approval.Status.CANCELED
    approval.decided_by = actor
    approval.decided_at = now
    approval.decision_reason = reason
    return _save(approval, actor=actor, channel=channel, reason=reason, operation="approval_cancel")


def expire_due(now: dt.datetime | None = None, *, batch: int = 100) -> int:
    """Mark pending requests past their expiry `expired` (the worker's duty, actor system);
    answers how many. Rows a decision holds locked are skipped (it answers for them)."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            due = list(
                Approval.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("requested_by", "decided_by")
                .filter(status=Approval.Status.PENDING, expires_at__lte=now)
                .order_by("id")[:batch]
            )
            if not due:
                return expired
            with audited(actor=None, channel=Channel.SYSTEM, operation="approval_expire"):
                for approval in due:
                    approval.status = Approval.Status.EXPIRED
                    approval.decided_at = approval.expires_at
                    approval.save()
                    _record(approval)
            expired += len(due)
