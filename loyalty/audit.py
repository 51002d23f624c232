"""Attribution of every audited change: actor, channel, reason, operation and request id.

Services open an `audited(...)` block around their writes; a simple-history signal copies
the block's attribution onto every historical row written inside it. A save of an audited
model outside such a block is refused, so no change can land unattributed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import models
from simple_history.signals import pre_create_historical_record

from loyalty.request_id import current_request_id


class Channel(models.TextChoices):
    ADMIN = "admin", "Admin"
    STAFF_API = "staff-api", "Staff API"
    STAMP_API = "stamp-api", "Stamp API"
    BALANCE_API = "balance-api", "Balance API"
    POINTS_API = "points-api", "Points API"
    COMMAND = "command", "Command"
    # What the background worker does on its own (e.g. expiring an approval); no user.
    SYSTEM = "system", "System"


_CHANNELS = frozenset(Channel.values)

# Channels through which staff act; corrections through them always carry a reason.
STAFF_CHANNELS = frozenset({Channel.ADMIN, Channel.STAFF_API, Channel.COMMAND})


@dataclass(frozen=True)
class Approval:
    """The second person of a four-eyes correction: who approved it, which approval, why."""

    approver: object  # a User
    approval_id: int
    reason: str


@dataclass(frozen=True)
class AuditContext:
    actor: object | None  # a User (a partner acts through its service user)
    channel: str
    reason: str = ""
    operation: str = ""
    # Set when the change applies an approved request (`approving()`); the actor is then the
    # requester.
    approval: Approval | None = None

    @property
    def approved_by(self):
        return self.approval.approver if self.approval else None


_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)
_approving: ContextVar[Approval | None] = ContextVar("audit_approving", default=None)


class UnattributedChange(RuntimeError):
    """An audited model was saved outside an `audited()` block."""


def current() -> AuditContext | None:
    return _current.get()


@contextmanager
def audited(*, actor, channel: str, reason: str = "", operation: str = "") -> Iterator[None]:
    if channel not in _CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    token = _current.set(AuditContext(actor, channel, reason, operation, _approving.get()))
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def approving(*, approver, approval_id: int, reason: str) -> Iterator[None]:
    """Every `audited()` block opened inside records `approver` (and the approval and its
    decision reason) beside its own actor: a correction applied after a four-eyes approval
    names both people in its history rows and its events."""
    token = _approving.set(Approval(approver, approval_id, reason))
    try:
        yield
    finally:
        _approving.reset(token)


class AuditedHistoricalModel(models.Model):
    """Extra columns on every historical table, besides simple-history's user and reason."""

    channel = models.CharField(max_length=16, choices=Channel.choices, db_index=True)
    operation = models.CharField(max_length=40, blank=True, default="", db_index=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    # A change that applies an approved request: the approver, the approval, its reason (the
    # history user is the requester and the change reason the requester's).
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="+",
    )
    approval_id = models.BigIntegerField(null=True, blank=True)
    approval_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        abstract = True


def _attribute(sender, history_instance, **kwargs) -> None:
    context = _current.get()
    if context is None:
        raise UnattributedChange(
            f"{sender.__name__}: audited models change only inside loyalty.audit.audited()"
        )
    actor = context.actor
    history_instance.history_user = actor if getattr(actor, "pk", None) else None
    history_instance.history_change_reason = context.reason or None
    history_instance.channel = context.channel
    history_instance.operation = context.operation
    history_instance.request_id = current_request_id()
    approval = context.approval
    if approval is not None:
        history_instance.approved_by = approval.approver
        history_instance.approval_id = approval.approval_id
        history_instance.approval_reason = approval.reason


def connect_signals() -> None:
    pre_create_historical_record.connect(_attribute, dispatch_uid="loyalty.audit.attribute")
