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


# Channels through which staff act; corrections through them always carry a reason.
STAFF_CHANNELS = frozenset({Channel.ADMIN, Channel.STAFF_API, Channel.COMMAND})


@dataclass(frozen=True)
class AuditContext:
    actor: object | None  # a User (a partner acts through its service user)
    channel: str
    reason: str = ""
    operation: str = ""


_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


class UnattributedChange(RuntimeError):
    """An audited model was saved outside an `audited()` block."""


def current() -> AuditContext | None:
    return _current.get()


@contextmanager
def audited(*, actor, channel: str, reason: str = "", operation: str = "") -> Iterator[None]:
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    token = _current.set(AuditContext(actor, channel, reason, operation))
    try:
        yield
    finally:
        _current.reset(token)


class AuditedHistoricalModel(models.Model):
    """Extra columns on every historical table, besides simple-history's user and reason."""

    channel = models.CharField(max_length=16, choices=Channel.choices, db_index=True)
    operation = models.CharField(max_length=40, blank=True, default="", db_index=True)
    request_id = models.CharField(max_length=64, blank=True, default="")

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


def connect_signals() -> None:
    pre_create_historical_record.connect(_attribute, dispatch_uid="loyalty.audit.attribute")
