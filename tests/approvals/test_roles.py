"""The Supervisor role: Support's permissions plus approving, synced like the other groups."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from ledger import roles

pytestmark = pytest.mark.django_db


def permissions_of(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


def test_supervisor_is_support_plus_approving():
    support, supervisor = permissions_of(roles.SUPPORT), permissions_of(roles.SUPERVISOR)
    assert supervisor - support == {"ledger.approve_correction"}
    assert support <= supervisor
    assert "ledger.approve_correction" not in permissions_of(roles.AUDITOR)
    for name in (roles.SUPPORT, roles.SUPERVISOR, roles.AUDITOR):
        # Everyone who reads reads approvals, policies, limits and their history.
        assert {
            "ledger.view_approval",
            "ledger.view_historicalapproval",
            "ledger.view_approvalpolicy",
            "ledger.view_stafflimit",
        } <= permissions_of(name)
        # Nobody manages policies or limits but superusers (and whoever is given it).
        assert not {"ledger.manage_approvalpolicy", "ledger.manage_stafflimit"} & permissions_of(
            name
        )


def test_create_staff_supervisor_can_approve():
    user, token = roles.staff_create(username="sup", role="supervisor")
    assert token and user.has_perm("ledger.approve_correction")
    assert list(user.groups.values_list("name", flat=True)) == ["Supervisor"]
