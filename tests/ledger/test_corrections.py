"""The corrections registry: its entries, the Support role derived from it, sizes, and the
migration that renamed the history rows written under the old operation names."""

import importlib

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management.sql import emit_post_migrate_signal
from django.db import IntegrityError, connection, transaction

from accounts.models import Customer
from ledger import corrections, roles, services
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel, audited
from partners.models import Partner
from tests.admin.utils import deduct
from tests.helpers import fund

pytestmark = pytest.mark.django_db

operation_names = importlib.import_module("ledger.migrations.0006_operation_names")


def _group_permissions(name: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=name).permissions.select_related("content_type")
    }


def test_kinds_are_the_approvals_and_batches_vocabulary():
    assert [c.kind for c in corrections.CORRECTIONS] == [
        "deduct_stamp",
        "cancel_balance_update",
        "revert_points",
        "adjust_balance",
        "adjust_points",
    ]


@pytest.mark.parametrize("correction", corrections.CORRECTIONS, ids=lambda c: c.kind)
def test_each_entry_names_a_service_an_existing_permission_and_its_operation(correction):
    assert getattr(services, correction.operation) is correction.service
    app_label, codename = correction.permission.split(".")
    assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists()


@pytest.mark.parametrize("correction", corrections.CORRECTIONS, ids=lambda c: c.kind)
def test_support_holds_every_correction_and_auditor_none(correction):
    assert correction.permission in _group_permissions(roles.SUPPORT)
    assert correction.permission not in _group_permissions(roles.AUDITOR)


def test_groups_are_resynced_after_migrate():
    support = Group.objects.get(name=roles.SUPPORT)
    support.permissions.clear()
    Group.objects.filter(name=roles.AUDITOR).delete()
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    assert _group_permissions(roles.SUPPORT) == set(roles.GROUP_PERMISSIONS[roles.SUPPORT])
    assert _group_permissions(roles.AUDITOR) == set(roles.GROUP_PERMISSIONS[roles.AUDITOR])


def test_sizes_are_those_approvals_and_limits_count(customer, store, partner, stamp):
    fund(customer, balance=70, points=40, store=store)
    credit = BalanceUpdate.objects.get(customer=customer)
    deduction = deduct(partner, customer, 15, "size-1")
    size = {c.kind: c.size for c in corrections.CORRECTIONS}
    assert size["deduct_stamp"](stamp, None) == 1
    assert size["cancel_balance_update"](credit, None) == 70
    assert size["revert_points"](deduction, None) == 15
    assert size["adjust_balance"](customer, -25) == 25
    assert size["adjust_points"](customer, 9) == 9


def test_dashboard_kinds_are_every_correction_and_the_stamp_api_count_update():
    from ledger import dashboard

    assert list(dashboard.KINDS) == [
        "stamp_remove",
        "stamp_set_count",
        "balance_update_cancel",
        "balance_adjust",
        "point_deduction_revert",
        "points_adjust",
    ]


def _write_history(obj, operation: str) -> None:
    with audited(actor=None, channel=Channel.COMMAND, operation=operation):
        obj.save()


def test_migration_renames_old_operation_names_and_keeps_history_append_only(
    customer, store, partner, stamp
):
    fund(customer, balance=10, points=10, store=store)
    update = BalanceUpdate.objects.get(customer=customer)
    txn = PointTransaction.objects.get(customer=customer)
    partner = Partner.objects.get(pk=partner.pk)
    old_rows = [
        (stamp, "stamp_delete"),
        (update, "balance_cancel"),
        (customer, "balance_cancel"),
        (txn, "points_deduct"),
        (txn, "points_revert"),
        (customer, "points_revert"),
        (txn, "points_confirm"),
        (partner, "partner_rotate"),
        (stamp, "stamp_set_count"),  # already a service name: kept
    ]
    for obj, operation in old_rows:
        _write_history(obj, operation)

    with connection.schema_editor() as editor:
        operation_names.rename(django_apps(), editor)

    def latest(obj, count):
        rows = type(obj).history.filter(id=obj.pk).order_by("-history_id")[:count]
        return sorted(r.operation for r in rows)

    assert latest(stamp, 2) == ["stamp_deactivate", "stamp_set_count"]
    assert latest(update, 1) == ["balance_update_cancel"]
    assert latest(txn, 3) == [
        "point_deduct",
        "point_deduction_confirm",
        "point_deduction_revert",
    ]
    assert latest(customer, 2) == ["balance_update_cancel", "point_deduction_revert"]
    assert latest(partner, 1) == ["partner_rotate_credentials"]
    old = set(operation_names.RENAMES)
    for model in (Customer, Stamp, BalanceUpdate, PointTransaction, Partner):
        assert not model.history.filter(operation__in=old).exists()

    if connection.vendor == "postgresql":  # the trigger is back on
        row = Stamp.history.filter(id=stamp.pk).first()
        with pytest.raises(IntegrityError), transaction.atomic():
            type(row).objects.filter(pk=row.pk).update(operation="edited")


def django_apps():
    from django.apps import apps

    return apps
