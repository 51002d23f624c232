"""What a version is: the audited models, a version and its changes, the diff, labels."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model

from accounts.models import Customer, Merchant, Store
from ledger.models import (
    Approval,
    ApprovalPolicy,
    BalanceUpdate,
    CorrectionBatch,
    PointTransaction,
    StaffLimit,
    Stamp,
    StampCard,
)
from partners.models import Partner

# The label of each audited model in the audit log, in a fixed order (used as a tie-breaker).
AUDITED_MODELS: dict[str, type[Model]] = {
    "approval": Approval,
    "approvalpolicy": ApprovalPolicy,
    "balanceupdate": BalanceUpdate,
    "correctionbatch": CorrectionBatch,
    "customer": Customer,
    "merchant": Merchant,
    "partner": Partner,
    "pointtransaction": PointTransaction,
    "stamp": Stamp,
    "stampcard": StampCard,
    "stafflimit": StaffLimit,
    "store": Store,
}


_RANK = {label: rank for rank, label in enumerate(sorted(AUDITED_MODELS))}


# Others: merchant_id; None: a model of no merchant (a staff limit), left out by that filter.
MERCHANT_COLUMN = {Merchant: "id", Partner: "primary_merchant_id", StaffLimit: None}

HISTORY_COLUMNS = {
    "history_id",
    "history_date",
    "history_type",
    "history_user",
    "history_change_reason",
    "history_relation",
    "channel",
    "operation",
    "request_id",
    "approved_by",
    "approval_id",
    "approval_reason",
}


# What a change shows instead of a redacted field's value (see `redacted_fields`).
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Change:
    field: str
    old: object
    new: object
    # What a person reads (ledger.history.names): the field's verbose name, and each value
    # named (an object by its name, a choice by its label, an instant with its time zone).
    field_label: str = ""
    old_label: object = None
    new_label: object = None


@dataclass
class Version:
    model: str
    object_id: int
    history_id: int
    history_date: dt.datetime
    history_type: str
    actor: str
    channel: str
    operation: str
    reason: str
    request_id: str
    changes: list[Change] = field(default_factory=list)
    # What a person reads (ledger.history.names.name_versions fills them in).
    model_name: str = ""
    object_label: str = ""
    operation_label: str = ""
    # A change that applied an approved request: who approved it, which approval, why.
    approved_by: str | None = None
    approval: int | None = None
    approval_reason: str = ""

    def as_dict(self) -> dict:
        return {
            "approved_by": self.approved_by,
            "approval": self.approval,
            "approval_reason": self.approval_reason or None,
            "model": self.model,
            "model_name": self.model_name,
            "object_id": self.object_id,
            "object_label": self.object_label,
            "history_id": self.history_id,
            "history_date": self.history_date,
            "history_type": self.history_type,
            "actor": self.actor,
            "channel": self.channel,
            "operation": self.operation,
            "operation_label": self.operation_label,
            "reason": self.reason,
            "request_id": self.request_id,
            "changes": [
                {
                    "field": c.field,
                    "field_label": c.field_label,
                    "old": c.old,
                    "new": c.new,
                    "old_label": c.old_label,
                    "new_label": c.new_label,
                }
                for c in self.changes
            ],
        }


def actor_label(user) -> str:
    """A staff user's username, a partner's name, or "system" for commands without a user."""
    if user is None:
        return "system"
    try:
        return user.partner.name
    except ObjectDoesNotExist:
        return user.get_username()


# A tracked field named like a credential is redacted even if its model forgets to declare it
# (a new credential column must not show up in history until someone notices).
SECRET_NAME_PARTS = ("secret", "password", "digest", "token", "encrypted", "api_key", "hmac")


def looks_secret(name: str) -> bool:
    name = name.lower()
    return any(part in name for part in SECRET_NAME_PARTS)


@cache
def redacted_fields(model: type[Model]) -> frozenset[str]:
    """The fields of `model` whose values no reader of history shows: those `model` declares
    (`history_redacted_fields`, e.g. a partner's credentials) and any tracked field named like
    a credential (`looks_secret`). Their changes are still listed, each value replaced by
    `REDACTED` (an empty value stays empty: it reveals nothing)."""
    declared = set(getattr(model, "history_redacted_fields", ()))
    named = {label for label in _field_labels(_fields(model)) if looks_secret(label)}
    return frozenset(declared | named)


def _redact(value):
    return value if value in (None, "") else REDACTED


def model_label(model: type[Model]) -> str:
    return model._meta.model_name


def tracked_fields(model: type[Model]) -> list[str]:
    history_model = model.history.model
    return [f.attname for f in history_model._meta.fields if f.name not in HISTORY_COLUMNS]


@cache
def _fields(model: type[Model]) -> tuple[str, ...]:
    """`tracked_fields`, once per model (`model.history` builds a manager class per access)."""
    return tuple(tracked_fields(model))


@cache
def _field_labels(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The name a change shows for each field: a foreign key without its `_id`."""
    return tuple(name[:-3] if name.endswith("_id") and name != "id" else name for name in fields)


_SIMPLE_TYPES = frozenset({int, str, bool})


def _plain(value):
    if value is None or type(value) in _SIMPLE_TYPES:
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "as_tuple"):  # Decimal
        return str(value)
    return value


def _diff(
    new: Sequence,
    old: Sequence | None,
    labels: Sequence[str],
    redacted: frozenset[str] = frozenset(),
) -> list[Change]:
    """The changes from the values `old` to `new` (both in the order of `labels`), the values
    of the `redacted` labels masked.

    Without `old` (a creation, or a version whose previous one is unknown) every field that
    has a value is a change from None.
    """
    changes = _raw_diff(new, old, labels)
    if redacted:
        changes = [
            Change(c.field, _redact(c.old), _redact(c.new)) if c.field in redacted else c
            for c in changes
        ]
    return changes


def _raw_diff(new: Sequence, old: Sequence | None, labels: Sequence[str]) -> list[Change]:
    if old is None:
        return [
            Change(label, None, _plain(value))
            for label, value in zip(labels, new, strict=True)
            if value not in (None, "")
        ]
    return [
        Change(label, _plain(before), _plain(after))
        for label, after, before in zip(labels, new, old, strict=True)
        if before != after
    ]
