"""Approval policies and staff limits: what holds a correction, and the counters that make
the daily limits hold exactly (README: Approvals and staff limits).

A user's applied corrections are counted per kind and "*" per UTC day (`StaffDailyUsage`) by a
conditional UPDATE in the transaction that applies the correction (`count`): PostgreSQL
re-checks its WHERE on the newest row version after waiting for a concurrent one, so two
requests never both pass a limit that only one of them may; an UPDATE that matches nothing
raises `Held` and the caller's transaction rolls back. Never count-then-write in Python.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F, Model
from django.utils import timezone

from ledger import errors
from ledger.models import ApprovalPolicy, StaffDailyUsage, StaffLimit
from ledger.models.approvals import ALL_KINDS
from loyalty.audit import audited
from loyalty.http.limits import REASON_MAX

MANAGE_POLICY = "ledger.manage_approvalpolicy"
MANAGE_LIMIT = "ledger.manage_stafflimit"

# Why a correction is held (Approval.held_because).
POLICY, MAX_AMOUNT_HELD, DAILY_AMOUNT, DAILY_COUNT = (
    "policy",
    "max_amount",
    "daily_amount",
    "daily_count",
)


class Held(Exception):
    """A daily limit refused to count the correction: hold it (`why`)."""

    def __init__(self, why: str) -> None:
        self.why = why


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def static_hold(correction, *, user, merchant_id: int, size: int) -> str | None:
    """A policy's threshold or the user's `max_amount`: what holds a correction regardless of
    what else was applied today."""
    policy = ApprovalPolicy.objects.filter(merchant_id=merchant_id, kind=correction.kind).first()
    if policy is not None and size >= policy.threshold:
        return POLICY
    for limit in limits_of(user, correction.kind).values():
        if limit.max_amount is not None and size > limit.max_amount:
            return MAX_AMOUNT_HELD
    return None


def limits_of(user, kind: str) -> dict[str, StaffLimit]:
    if user is None:
        return {}
    return {
        limit.kind: limit
        for limit in StaffLimit.objects.filter(user=user, kind__in=[kind, ALL_KINDS])
    }


def _over_day(limit: StaffLimit | None, usage: StaffDailyUsage | None, size: int) -> str | None:
    count = usage.count if usage else 0
    amount = usage.amount if usage else 0
    if limit is None:
        return None
    if limit.daily_count is not None and count + 1 > limit.daily_count:
        return DAILY_COUNT
    if limit.daily_amount is not None and amount + size > limit.daily_amount:
        return DAILY_AMOUNT
    return None


def count(user, kind: str, size: int, *, enforce: bool = True) -> None:
    """Count one applied correction of `size` toward `user`'s day, for `kind` and for "*".

    With `enforce`, each counter moves only if it stays within the user's daily limits: a
    conditional UPDATE whose WHERE PostgreSQL re-checks on the newest row version after
    waiting for a concurrent one, so concurrent corrections never pass a limit together.
    Raises `Held` (the caller's transaction then rolls back) when one does not move.
    """
    if user is None:
        return
    day = _today()
    limits = limits_of(user, kind) if enforce else {}
    for key in sorted({kind, ALL_KINDS}):  # one lock order for every request
        StaffDailyUsage.objects.bulk_create(
            [StaffDailyUsage(user=user, kind=key, day=day)], ignore_conflicts=True
        )
        counter = StaffDailyUsage.objects.filter(user=user, kind=key, day=day)
        limit = limits.get(key)
        if limit is not None:
            if limit.daily_count is not None:
                counter = counter.filter(count__lte=limit.daily_count - 1)
            if limit.daily_amount is not None:
                counter = counter.filter(amount__lte=limit.daily_amount - size)
        if counter.update(count=F("count") + 1, amount=F("amount") + size) == 0:
            now = StaffDailyUsage.objects.filter(user=user, kind=key, day=day).first()
            raise Held(_over_day(limit, now, size) or DAILY_COUNT)


def over_today(user, kind: str, size: int) -> str | None:
    """Which daily limit a correction of `size` would break now, or None; counts nothing."""
    day = _today()
    for key, limit in limits_of(user, kind).items():
        usage = StaffDailyUsage.objects.filter(user=user, kind=key, day=day).first()
        if (why := _over_day(limit, usage, size)) is not None:
            return why
    return None


# --- managing policies and limits ---------------------------------------------------------


def can_manage(user, model: type[Model]) -> bool:
    """Policies and limits have the same managers: superusers and holders of
    `manage_approvalpolicy` (or, for limits, `manage_stafflimit`)."""
    if user.has_perm(MANAGE_POLICY):
        return True
    return model is StaffLimit and user.has_perm(MANAGE_LIMIT)


def _setting_reason(reason) -> str:
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if len(reason) > REASON_MAX:
        raise errors.ReasonRequired()
    return reason


@transaction.atomic
def setting_save(instance: Model, *, actor, channel: str, reason: str = "", **fields) -> Model:
    """Create or change a policy or a staff limit, audited (`operation`: <model>_save)."""
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean(validate_unique=False, validate_constraints=False)
    operation = f"{instance._meta.model_name}_save"
    with audited(actor=actor, channel=channel, reason=_setting_reason(reason), operation=operation):
        instance.save()
    return instance


@transaction.atomic
def setting_delete(instance: Model, *, actor, channel: str, reason: str = "") -> None:
    operation = f"{instance._meta.model_name}_delete"
    with audited(actor=actor, channel=channel, reason=_setting_reason(reason), operation=operation):
        instance.delete()
