"""Approval policies and staff limits: who manages them (superusers and holders of
`manage_approvalpolicy`), every change audited, and what the limits hold."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from ledger import approvals, corrections
from ledger.models import Approval, ApprovalPolicy, StaffDailyUsage, StaffLimit
from loyalty.audit import Channel
from tests import factories
from tests.api.conftest import StaffClient, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(db):
    """A staff user in no group holding only `manage_approvalpolicy` (and reading both)."""
    user = factories.UserFactory(username="manager-1")
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["manage_approvalpolicy", "view_approvalpolicy", "view_stafflimit"]
        )
    )
    return user


@pytest.fixture
def api_manager(manager) -> StaffClient:
    return StaffClient(token_for(manager))


def test_support_and_supervisors_read_policies_but_do_not_manage_them(
    world, api_support, api_supervisor, api_auditor
):
    body = {"merchant": world["merchant"].pk, "kind": "adjust_points", "threshold": 10}
    for client in (api_support, api_supervisor, api_auditor):
        response = client.post("approval-policies/", body)
        assert response.status_code == 403, response.json()
        assert response.json()["code"] == "permission_denied"
        assert client.get("approval-policies/").status_code == 200
        assert client.get("staff-limits/").status_code == 200
        assert client.post("staff-limits/", {"user": "support-1", "kind": "*"}).status_code == 403
    assert not ApprovalPolicy.objects.exists() and not StaffLimit.objects.exists()


@pytest.mark.parametrize("who", ["api_manager", "api_superuser"])
def test_managers_create_change_and_delete_policies_audited(who, request, world, support):
    client = request.getfixturevalue(who)
    actor = {"api_manager": "manager-1", "api_superuser": "admin-1"}[who]
    merchant = world["merchant"].pk
    created = client.post(
        "approval-policies/",
        {"merchant": merchant, "kind": "adjust_points", "threshold": 10, "reason": "new rule"},
    )
    assert created.status_code == 201, created.json()
    policy = created.json()
    assert policy["merchant"] == merchant and policy["threshold"] == 10
    again = client.post(
        "approval-policies/", {"merchant": merchant, "kind": "adjust_points", "threshold": 3}
    )
    assert again.status_code == 400  # one per merchant and kind
    changed = client.patch(f"approval-policies/{policy['id']}/", {"threshold": 20})
    assert changed.status_code == 200 and changed.json()["threshold"] == 20
    bad = client.patch(f"approval-policies/{policy['id']}/", {"threshold": 0})
    assert bad.status_code == 400

    limit = client.post(
        "staff-limits/",
        {"user": "support-1", "kind": "*", "max_amount": 100, "daily_count": 5},
    )
    assert limit.status_code == 201, limit.json()
    assert limit.json() | {"id": None, "created": None} == {
        "id": None,
        "user": "support-1",
        "kind": "*",
        "max_amount": 100,
        "daily_amount": None,
        "daily_count": 5,
        "created": None,
    }
    assert client.post("staff-limits/", {"user": "nobody", "kind": "*"}).status_code == 400
    assert client.post("staff-limits/", {"user": "support-1", "kind": "bogus"}).status_code == 400
    limit_id = limit.json()["id"]
    assert client.patch(f"staff-limits/{limit_id}/", {"daily_count": None}).status_code == 200
    assert StaffLimit.objects.get().daily_count is None

    assert client.call("DELETE", f"approval-policies/{policy['id']}/").status_code == 204
    assert client.call("DELETE", f"staff-limits/{limit_id}/").status_code == 204
    assert not ApprovalPolicy.objects.exists() and not StaffLimit.objects.exists()

    # Every change is in history, with the actor, the channel and the reason.
    policy_versions = ApprovalPolicy.history.filter(id=policy["id"]).order_by("history_id")
    assert [(v.history_type, v.history_user.username, v.channel) for v in policy_versions] == [
        ("+", actor, "staff-api"),
        ("~", actor, "staff-api"),
        ("-", actor, "staff-api"),
    ]
    assert policy_versions[0].history_change_reason == "new rule"
    assert StaffLimit.history.filter(id=limit_id).count() == 3


def test_policies_and_limits_are_in_the_audit_log(world, support, api_superuser, api_auditor):
    merchant = world["merchant"].pk
    policy = {"merchant": merchant, "kind": "batch", "threshold": 1000}
    assert api_superuser.post("approval-policies/", policy).status_code == 201
    limit = {"user": "support-1", "kind": "deduct_stamp"}
    assert api_superuser.post("staff-limits/", limit).status_code == 201
    log = api_auditor.get("audit-log/").json()["results"]
    assert {"approvalpolicy", "stafflimit"} <= {v["model"] for v in log}
    # Staff limits belong to no merchant: a merchant filter leaves them out.
    by_merchant = api_auditor.get("audit-log/", {"merchant": merchant}).json()["results"]
    assert "stafflimit" not in {v["model"] for v in by_merchant}
    assert "approvalpolicy" in {v["model"] for v in by_merchant}
    csv = api_auditor.get("audit-log/", {"format": "csv", "model": "approvalpolicy"})
    assert b"approvalpolicy" in b"".join(csv.streaming_content)


def limit(user, **fields) -> StaffLimit:
    return approvals.setting_save(
        StaffLimit(), actor=None, channel=Channel.COMMAND, user=user, **fields
    )


def adjust(user, customer, amount: int):
    return approvals.submit(
        corrections.BY_KIND["adjust_points"],
        actor=user,
        channel=Channel.STAFF_API,
        target=customer,
        reason="limits",
        amount=amount,
    )


def test_max_amount_holds_a_bigger_correction(world, support):
    limit(support, kind="adjust_points", max_amount=10)
    assert not adjust(support, world["customer"], 10).held
    held = adjust(support, world["customer"], -11)
    assert held.held and held.approval.held_because == "max_amount"


def test_a_limit_on_one_kind_does_not_count_the_others(world, support):
    limit(support, kind="adjust_balance", daily_count=1)
    for _ in range(3):
        assert not adjust(support, world["customer"], 1).held


def test_superusers_are_held_by_their_limits_too(world, superuser):
    limit(superuser, kind="*", daily_amount=5)
    assert not adjust(superuser, world["customer"], 5).held
    held = adjust(superuser, world["customer"], 1)
    assert held.held and held.approval.held_because == "daily_amount"


def test_approved_corrections_count_toward_the_requesters_day(world, support, supervisor):
    limit(support, kind="adjust_points", daily_count=2)
    held = None
    for _ in range(3):
        held = adjust(support, world["customer"], 1)
    assert held.held and held.approval.held_because == "daily_count"
    approvals.approve(held.approval, actor=supervisor, channel=Channel.STAFF_API, reason="ok go")
    counter = StaffDailyUsage.objects.get(user=support, kind="adjust_points")
    assert (counter.count, counter.amount) == (3, 3)  # over its limit: approved, it counted
    assert adjust(support, world["customer"], 1).held
    # needs_approval says so without consuming anything.
    correction = corrections.BY_KIND["adjust_points"]
    assert (
        approvals.needs_approval(correction, actor=support, target=world["customer"], amount=1)
        == "daily_count"
    )
    assert StaffDailyUsage.objects.get(user=support, kind="adjust_points").count == 3
    assert Approval.objects.filter(status="pending").count() == 1
