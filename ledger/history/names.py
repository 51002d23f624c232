"""What a person reads in history instead of ids and codes: objects by name, fields and models
by their verbose names, operations by label, times with their time zone.

Names are resolved in bulk for a page or an export batch (`Names.resolve`): one query per
referenced model, whatever the number of rows, never one per row. An object that no longer
exists is named by its model and id ("Customer #7"). A redacted field's value is never named
(its label is `REDACTED` too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Model
from django.utils import timezone
from django.utils.text import capfirst

from ledger.corrections import CORRECTIONS
from ledger.history.versions import (
    AUDITED_MODELS,
    REDACTED,
    Change,
    _field_labels,
    _fields,
    redacted_fields,
)

# Operations that are not corrections (the registry's `recorded` labels name those), by the
# service name history records. An unknown code reads as itself, spaced and capitalised.
OPERATION_LABELS = {
    "balance_credit": "Balance credited",
    "balance_debit": "Balance debited",
    "balance_adjust": "Balance adjusted",
    "balance_update_cancel": "Balance update canceled",
    "customer_create": "Customer created",
    "customer_update": "Customer updated",
    "merchant_create": "Merchant created",
    "store_create": "Store created",
    "partner_create": "Partner created",
    "partner_rotate_credentials": "Partner credentials rotated",
    "point_deduct": "Points deducted",
    "point_deduction_confirm": "Deduction confirmed",
    "point_deduction_revert": "Deduction reverted",
    "points_adjust": "Points adjusted",
    "points_credit": "Points credited",
    "stamp_add": "Stamp added",
    "stamp_card_create": "Stamp card created",
    "stamp_create": "Stamp card issued",
    "stamp_deactivate": "Stamp deactivated",
    "stamp_remove": "Stamp removed",
    "stamp_set_count": "Stamp count set",
    "stamp_update": "Stamp updated",
    # Approvals (ledger.approvals.OPERATIONS) and their settings.
    "approval_request": "Approval requested",
    "approval_approve": "Request approved",
    "approval_reject": "Request rejected",
    "approval_cancel": "Request canceled",
    "approval_expire": "Request expired",
    "approval_fail": "Approved, but refused now",
    "approvalpolicy_save": "Approval policy saved",
    "approvalpolicy_delete": "Approval policy deleted",
    "stafflimit_save": "Staff limit saved",
    "stafflimit_delete": "Staff limit deleted",
    # Correction batches (ledger.batches).
    "batch_create": "Batch uploaded",
    "batch_apply": "Batch applied",
    "batch_reject": "Batch rejected",
    "batch_complete": "Batch completed",
}


@cache
def _operation_labels() -> dict[str, str]:
    return {**OPERATION_LABELS, **{c.operation: c.recorded for c in CORRECTIONS}}


def operation_label(code: str) -> str:
    """ "Stamp added" for `stamp_add`; "" for no operation."""
    if not code:
        return ""
    return _operation_labels().get(code) or capfirst(code.replace("_", " "))


def model_name(model: type[Model]) -> str:
    """ "Balance update" for BalanceUpdate: the verbose name, capitalised."""
    return capfirst(str(model._meta.verbose_name))


def format_instant(value: dt.datetime) -> str:
    """`value` in the active time zone, with its abbreviation: "2026-12-06 14:03:12 UTC"."""
    if value.tzinfo is None:
        return f"{value:%Y-%m-%d %H:%M:%S}"
    value = value.astimezone(timezone.get_current_timezone())
    return f"{value:%Y-%m-%d %H:%M:%S} {value.tzname()}"


@dataclass(frozen=True)
class FieldInfo:
    label: str  # what a person reads: "Canceled by"
    related: type[Model] | None  # the model a foreign key points at
    choices: dict | None
    is_instant: bool
    plain: bool = False  # its values read as they are (no object, choice or instant to name)


@cache
def field_infos(model: type[Model]) -> dict[str, FieldInfo]:
    """Each change label (`_field_labels`) of `model`'s history, described."""
    infos = {}
    for name in _field_labels(_fields(model)):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:  # a history-only column: named as it is
            infos[name] = FieldInfo(capfirst(name.replace("_", " ")), None, None, False, True)
            continue
        infos[name] = FieldInfo(
            label=capfirst(str(field.verbose_name)),
            related=field.related_model if field.is_relation else None,
            choices={k: str(v) for k, v in field.flatchoices} if field.choices else None,
            is_instant=isinstance(field, models.DateTimeField),
            plain=not field.is_relation
            and not field.choices
            and not isinstance(field, models.DateTimeField | models.BooleanField),
        )
    return infos


def field_label(model: type[Model], name: str) -> str:
    info = field_infos(model).get(name)
    return info.label if info else capfirst(name.replace("_", " "))


JOIN_UP_TO = 100  # objects whose names read others: up to this many, joined (see resolve)


class Names:
    """Names of objects by (model, id), resolved in bulk: `want` what a page refers to, then
    `resolve()` once (one query per model with unnamed ids), then `of`."""

    def __init__(self) -> None:
        self._wanted: dict[type[Model], set] = {}
        self._names: dict[type[Model], dict] = {}
        self._objects: dict[type[Model], dict] = {}  # what other names read (str_related)

    def want(self, model: type[Model] | None, pk) -> None:
        if model is not None and pk is not None and pk != REDACTED:
            self._wanted.setdefault(model, set()).add(pk)

    def _unnamed(self, model: type[Model]) -> list:
        known = self._names.get(model, {})
        return [pk for pk in self._wanted.pop(model, ()) if pk not in known]

    def _load(self, model: type[Model], ids: list) -> list[Model]:
        """Instances of `model` with only the fields its name reads (3x faster to make)."""
        qs = model._default_manager.filter(pk__in=ids)
        fields = getattr(model, "str_fields", ())
        return list(qs.only(*fields, *getattr(model, "str_related", ())) if fields else qs)

    def _join(self, model: type[Model], ids: list) -> None:
        """Name a few objects of `model` with the objects their names read in one query (a
        join), and those too: a page's stamps need no query for their cards and customers."""
        if not ids:
            return
        related = model.str_related
        only = [*getattr(model, "str_fields", ()), *related]
        for name in related:
            other = model._meta.get_field(name).related_model
            only += [f"{name}__{f}" for f in getattr(other, "str_fields", ())]
        qs = model._default_manager.filter(pk__in=ids).select_related(*related).only(*only)
        known = self._names.setdefault(model, {})
        for obj in qs:
            known[obj.pk] = str(obj)
            for name in related:
                other = getattr(obj, name)
                if other is not None:
                    self._names.setdefault(type(other), {})[other.pk] = str(other)
                    self._objects.setdefault(type(other), {})[other.pk] = other

    def resolve(self) -> Names:
        """Name everything wanted: one query per model. Objects whose names read others
        (`str_related`: a stamp reads its card and customer) are loaded first; the objects
        they read are then loaded with every other object of their model and attached, so a
        page of 2000 point transactions of 50 customers makes 50 customers, not 2000; up to
        `JOIN_UP_TO` of them (a page), they come in one join instead (one query, not three)."""
        User = get_user_model()
        dependent = {}
        for model in [m for m in self._wanted if getattr(m, "str_related", ())]:
            ids = self._unnamed(model)
            if len(ids) <= JOIN_UP_TO:
                self._join(model, ids)
                continue
            dependent[model] = self._load(model, ids)
            for name in model.str_related:
                field = model._meta.get_field(name)
                loaded = self._objects.get(field.related_model, {})
                for obj in dependent[model]:
                    pk = getattr(obj, field.attname)
                    if pk not in loaded:
                        self.want(field.related_model, pk)
                self._objects.setdefault(field.related_model, {})
        for model in list(self._wanted):
            ids = self._unnamed(model)
            if not ids:
                continue
            known = self._names.setdefault(model, {})
            if model is User:
                manager = User._default_manager
                known.update(manager.filter(pk__in=ids).values_list("pk", User.USERNAME_FIELD))
                continue
            keep = self._objects.get(model)
            for obj in self._load(model, ids):
                known[obj.pk] = str(obj)
                if keep is not None:
                    keep[obj.pk] = obj
        for model, objs in dependent.items():
            known = self._names.setdefault(model, {})
            fields = [model._meta.get_field(name) for name in model.str_related]
            for obj in objs:
                for field in fields:
                    other = self._objects[field.related_model].get(getattr(obj, field.attname))
                    if other is not None:
                        field.set_cached_value(obj, other)
                known[obj.pk] = str(obj)
        return self

    def of(self, model: type[Model], pk) -> str:
        name = self._names.get(model, {}).get(pk)
        return name if name is not None else f"{model_name(model)} #{pk}"


def want_changes(names: Names, model: type[Model], changes: Iterable) -> None:
    """Ask `names` for the objects the foreign keys of `changes` point at."""
    infos = field_infos(model)
    for change in changes:
        info = infos.get(change.field)
        if info is not None and info.related is not None:
            names.want(info.related, change.old)
            names.want(info.related, change.new)


def value_label(names: Names, info: FieldInfo | None, value):
    """What a person reads for a change's value: an object's name, a choice's label, an
    instant with its time zone, "Yes"/"No"; None stays None, `REDACTED` stays `REDACTED`."""
    kind = type(value)
    if value is None or (kind is str and (value == REDACTED or info is None or info.plain)):
        return value
    if kind is int and (info is None or info.plain):
        return int.__repr__(value)
    if info is not None:
        if info.related is not None:
            return names.of(info.related, value)
        if info.choices is not None and value in info.choices:
            return info.choices[value]
        if info.is_instant and kind is str:
            try:
                return format_instant(dt.datetime.fromisoformat(value))
            except ValueError:
                return value
    if value is True or value is False:
        return "Yes" if value else "No"
    return value if isinstance(value, str) else str(value)


_AS_IS = frozenset({str, int, type(None)})


def _as_text(value):
    return int.__repr__(value) if type(value) is int else value


def labels(names: Names, model: type[Model], changes: Iterable, redacted: frozenset[str]):
    """(field_label, old_label, new_label) of each of `changes` (names resolved)."""
    infos = field_infos(model)
    for c in changes:
        info = infos.get(c.field)
        label = info.label if info else capfirst(c.field.replace("_", " "))
        if c.field in redacted:
            yield label, c.old, c.new  # already masked; never named
        elif info is not None and info.plain and type(c.old) in _AS_IS and type(c.new) in _AS_IS:
            yield label, _as_text(c.old), _as_text(c.new)  # what value_label answers, faster
        else:
            yield label, value_label(names, info, c.old), value_label(names, info, c.new)


def labelled(names: Names, model: type[Model], changes: list, redacted: frozenset[str]) -> list:
    """`changes` with their `field_label`, `old_label` and `new_label` (names resolved)."""
    return [
        Change(c.field, c.old, c.new, *text)
        for c, text in zip(changes, labels(names, model, changes, redacted), strict=True)
    ]


def name_versions(versions: list) -> list:
    """Fill in each version's `model_name`, `object_label`, `operation_label` and its changes'
    labels, resolving every name the versions refer to in one query per model."""
    names = Names()
    for v in versions:
        model = AUDITED_MODELS[v.model]
        names.want(model, v.object_id)
        want_changes(names, model, v.changes)
    names.resolve()
    for v in versions:
        model = AUDITED_MODELS[v.model]
        v.model_name = model_name(model)
        v.object_label = names.of(model, v.object_id)
        v.operation_label = operation_label(v.operation)
        v.changes = labelled(names, model, v.changes, redacted_fields(model))
    return versions
