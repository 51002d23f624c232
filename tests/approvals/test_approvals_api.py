"""Four-eyes approvals through the staff API, per correction kind (README: Approvals and staff
limits): held at the threshold with nothing moved, applied by a second person with both names
in history and events, refused to the requester (superusers too), rejected, canceled, expired,
failed when the correction became impossible; only approvers decide."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ledger import approvals, corrections, events, reconcile, services
from ledger.models import Approval, ApprovalPolicy, BalanceUpdate, Event, PointTransaction
from loyalty.audit import Channel
from tests.api.conftest import ledger_snapshot
from tests.helpers import postgres_only

pytestmark = pytest.mark.django_db

APPROVAL_MODELS = {"approval", "approvalpolicy", "stafflimit"}


def ledger_only() -> dict:
    """What a correction moves: the ledger snapshot without the approvals' own histories, and
    the ledger's events (approval.* events aside)."""
    snapshot = ledger_snapshot()
    snapshot["history"] = {k: v for k, v in snapshot["history"].items() if k not in APPROVAL_MODELS}
    snapshot["events"] = Event.objects.exclude(type__startswith="approval.").count()
    return snapshot


# kind -> (request path, body, size) in the `world` fixture (stamp at 2, a credit of 100, a
# deduction of 10 points, the customer at balance 100 and 90 points).
def correction_call(kind: str, world: dict) -> tuple[str, dict, int]:
    customer = world["customer"].pk
    return {
        "deduct_stamp": (f"stamps/{world['stamp'].pk}/deduct/", {}, 1),
        "cancel_balance_update": (f"balance-updates/{world['credit'].pk}/cancel/", {}, 100),
        "revert_points": (f"point-transactions/{world['deduction'].pk}/revert/", {}, 10),
        "adjust_balance": (f"customers/{customer}/adjust-balance/", {"amount": -30}, 30),
        "adjust_points": (f"customers/{customer}/adjust-points/", {"amount": -7}, 7),
    }[kind]


def make_impossible(kind: str, world: dict) -> None:
    """Change the world (outside the staff surfaces) so that the correction is refused now."""
    command = {"actor": None, "channel": Channel.COMMAND, "reason": "meanwhile"}
    if kind == "deduct_stamp":
        for _ in range(2):
            services.stamp_remove(stamp=world["stamp"], **command)
    elif kind == "cancel_balance_update":
        services.balance_update_cancel(balance_update=world["credit"], **command)
    elif kind == "revert_points":
        services.point_deduction_revert(deduction=world["deduction"], **command)
    elif kind == "adjust_balance":
        services.balance_adjust(customer=world["customer"], amount=-80, **command)
    else:
        services.points_adjust(customer=world["customer"], amount=-85, **command)


def set_policy(merchant, kind: str, threshold: int) -> ApprovalPolicy:
    return approvals.setting_save(
        ApprovalPolicy(),
        actor=None,
        channel=Channel.COMMAND,
        merchant=merchant,
        kind=kind,
        threshold=threshold,
    )


KINDS = [c.kind for c in corrections.CORRECTIONS]


def request_held(kind, world, client) -> dict:
    path, body, size = correction_call(kind, world)
    set_policy(world["merchant"], kind, size)
    response = client.post(path, {**body, "reason": "customer complained"})
    assert response.status_code == 202, response.json()
    return response.json()["approval"]


@pytest.mark.parametrize("kind", KINDS)
def test_below_the_threshold_applies_at_once(kind, world, api_support):
    path, body, size = correction_call(kind, world)
    set_policy(world["merchant"], kind, size + 1)
    response = api_support.post(path, {**body, "reason": "customer complained"})
    assert response.status_code == 200, response.json()
    assert not Approval.objects.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_at_the_threshold_it_is_held_and_nothing_moves(kind, world, api_support):
    before = ledger_only()
    path, body, size = correction_call(kind, world)
    set_policy(world["merchant"], kind, size)
    response = api_support.post(path, {**body, "reason": "customer complained"})
    assert response.status_code == 202, response.json()
    approval = response.json()["approval"]
    assert approval["status"] == "pending"
    assert approval["kind"] == kind
    assert approval["size"] == size
    assert approval["requested_by"] == "support-1"
    assert approval["reason"] == "customer complained"
    assert approval["decided_by"] is None and approval["result"] is None
    correction = corrections.BY_KIND[kind]
    assert approval["target"]["model"] == correction.target._meta.label_lower
    preview = approval["preview"]
    assert preview["before"] != preview["after"]
    assert ledger_only() == before
    [event] = Event.objects.filter(type__startswith="approval.")
    assert event.type == "approval.requested"
    assert event.customer_id is None and event.customer_sequence is None
    assert event.actor_name == "support-1" and event.reason == "customer complained"
    assert event.data["approval"]["id"] == approval["id"]


@pytest.mark.parametrize("kind", KINDS)
def test_approved_by_a_supervisor_applies_with_both_names(kind, world, api_support, api_supervisor):
    approval = request_held(kind, world, api_support)
    expected_after = approval["preview"]["after"]
    response = api_supervisor.post(f"approvals/{approval['id']}/approve/", {"reason": "verified"})
    assert response.status_code == 200, response.json()
    decided = response.json()["approval"]
    assert decided["status"] == "approved"
    assert decided["decided_by"] == "supervisor-1"
    assert decided["decision_reason"] == "verified"
    assert decided["result"]["after"] == expected_after
    correction = corrections.BY_KIND[kind]

    # The ledger event: the requester acts, the approver is named beside them.
    event = Event.objects.filter(type=events.TYPES[correction.operation]).latest("id")
    assert (event.actor_name, event.reason, event.channel) == (
        "support-1",
        "customer complained",
        "staff-api",
    )
    assert event.data["approval"] == {
        "id": approval["id"],
        "approved_by": "supervisor-1",
        "reason": "verified",
    }
    assert Event.objects.filter(type="approval.approved").get().actor_name == "supervisor-1"

    # History of the corrected row, through the API: both people and both reasons.
    obj = decided["result"]["object"]
    resource = {
        "ledger.stamp": "stamps",
        "ledger.balanceupdate": "balance-updates",
        "ledger.pointtransaction": "point-transactions",
    }[obj["model"]]
    newest = api_supervisor.get(f"{resource}/{obj['id']}/history/").json()[0]
    assert newest["actor"] == "support-1"
    assert newest["reason"] == "customer complained"
    assert newest["approved_by"] == "supervisor-1"
    assert newest["approval"] == approval["id"]
    assert newest["approval_reason"] == "verified"
    # The approval's own history: requested by one, approved by the other.
    versions = api_supervisor.get(f"approvals/{approval['id']}/history/").json()
    assert [(v["actor"], v["operation"], v["reason"]) for v in versions] == [
        ("supervisor-1", "approval_approve", "verified"),
        ("support-1", "approval_request", "customer complained"),
    ]
    assert reconcile.run()[0] == []


@pytest.mark.parametrize("kind", ["adjust_points", "deduct_stamp"])
def test_nobody_approves_their_own_request_superusers_included(kind, world, api_superuser):
    before = ledger_only()
    approval = request_held(kind, world, api_superuser)  # policies hold superusers too
    for decision in ("approve", "reject"):
        response = api_superuser.post(f"approvals/{approval['id']}/{decision}/", {"reason": "mine"})
        assert response.status_code == 403
        assert response.json()["code"] == "self_approval"
    assert Approval.objects.get().status == "pending"
    assert ledger_only() == before


@pytest.mark.parametrize("kind", KINDS)
def test_rejected_is_never_applied(kind, world, api_support, api_supervisor):
    approval = request_held(kind, world, api_support)
    before = ledger_only()
    response = api_supervisor.post(f"approvals/{approval['id']}/reject/", {"reason": "no way"})
    assert response.status_code == 200, response.json()
    assert response.json()["approval"]["status"] == "rejected"
    assert ledger_only() == before
    again = api_supervisor.post(f"approvals/{approval['id']}/approve/", {"reason": "oops"})
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    assert Event.objects.filter(type="approval.rejected").get().reason == "no way"


@pytest.mark.parametrize("kind", KINDS)
def test_only_the_requester_cancels(kind, world, api_support, api_supervisor):
    approval = request_held(kind, world, api_support)
    other = api_supervisor.post(f"approvals/{approval['id']}/cancel/", {})
    assert other.status_code == 403 and other.json()["code"] == "permission_denied"
    before = ledger_only()
    response = api_support.post(f"approvals/{approval['id']}/cancel/", {})
    assert response.status_code == 200, response.json()
    assert response.json()["approval"]["status"] == "canceled"
    assert ledger_only() == before
    assert Event.objects.filter(type="approval.canceled").get().actor_name == "support-1"
    approve = api_supervisor.post(f"approvals/{approval['id']}/approve/", {"reason": "late"})
    assert approve.status_code == 409 and approve.json()["code"] == "already_decided"


@pytest.mark.parametrize("kind", KINDS)
def test_expired_cannot_be_decided_and_the_worker_records_it(
    kind, world, api_support, api_supervisor, settings
):
    approval = request_held(kind, world, api_support)
    later = timezone.now() + dt.timedelta(seconds=settings.APPROVAL_TTL_SECONDS + 1)
    before = ledger_only()
    with pytest.MonkeyPatch.context() as clock:
        clock.setattr(timezone, "now", lambda: later)
        for decision in ("approve", "reject"):
            response = api_supervisor.post(
                f"approvals/{approval['id']}/{decision}/", {"reason": "too late"}
            )
            assert response.status_code == 409
            assert response.json()["code"] == "approval_expired"
        shown = api_supervisor.get(f"approvals/{approval['id']}/").json()
        assert shown["status"] == "expired"  # reads expired before the worker ran
        listed = api_supervisor.get("approvals/", {"status": "expired"}).json()["results"]
        assert [a["id"] for a in listed] == [approval["id"]]
        assert api_supervisor.get("approvals/", {"status": "pending"}).json()["results"] == []
        call_command("run_worker", "--burst")
    assert ledger_only() == before
    for decision in ("approve", "reject", "cancel"):  # recorded expired: still approval_expired
        client = api_support if decision == "cancel" else api_supervisor
        response = client.post(f"approvals/{approval['id']}/{decision}/", {"reason": "too late"})
        assert (response.status_code, response.json()["code"]) == (409, "approval_expired")
    stored = Approval.objects.get()
    assert stored.status == "expired"
    event = Event.objects.get(type="approval.expired")
    assert (event.actor_type, event.actor_name, event.channel) == ("system", "system", "system")
    assert event.customer_id is None and event.customer_sequence is None
    newest = stored.history.latest("history_id")
    assert newest.history_user is None and newest.channel == "system"


@pytest.mark.parametrize("kind", KINDS)
def test_impossible_now_ends_failed_and_nothing_moves(kind, world, api_support, api_supervisor):
    approval = request_held(kind, world, api_support)
    make_impossible(kind, world)
    before = ledger_only()
    response = api_supervisor.post(f"approvals/{approval['id']}/approve/", {"reason": "ok then"})
    assert response.status_code == 200, response.json()
    failed = response.json()["approval"]
    assert failed["status"] == "failed"
    assert set(failed["result"]) == {"code", "message"}
    assert failed["result"]["code"] in {
        "stamp_count_zero",
        "already_canceled",
        "already_reverted",
        "insufficient_balance",
        "insufficient_points",
    }
    assert ledger_only() == before
    assert Event.objects.filter(type="approval.failed").get().data["approval"]["status"] == "failed"


@pytest.mark.parametrize("role", ["api_support", "api_auditor"])
def test_support_and_auditor_cannot_approve_before_any_other_check(
    role, request, world, api_support
):
    client = request.getfixturevalue(role)
    approval = request_held("adjust_points", world, api_support)
    for decision in ("approve", "reject"):
        # Their own request, a missing reason, an id that does not exist: still 403.
        for path, body in [
            (f"approvals/{approval['id']}/{decision}/", {"reason": "fine by me"}),
            (f"approvals/{approval['id']}/{decision}/", {}),
            (f"approvals/999999/{decision}/", {"reason": "fine by me"}),
        ]:
            response = client.post(path, body)
            assert response.status_code == 403, (path, response.json())
            assert response.json()["code"] == "permission_denied"
    assert Approval.objects.get().status == "pending"


def test_reasons_are_required_to_request_approve_and_reject(world, api_support, api_supervisor):
    approval = request_held("adjust_points", world, api_support)
    path, body, _size = correction_call("adjust_points", world)
    for reason in [None, "x", "x" * 501]:
        request = {**body} if reason is None else {**body, "reason": reason}
        assert api_support.post(path, request).status_code == 400
    assert Approval.objects.count() == 1
    for decision in ("approve", "reject"):
        for body in [{}, {"reason": "no"}, {"reason": "x" * 501}]:
            response = api_supervisor.post(f"approvals/{approval['id']}/{decision}/", body)
            assert response.status_code == 400, response.json()
    assert Approval.objects.get().status == "pending"


def test_approve_takes_an_idempotency_key(world, api_support, api_supervisor):
    approval = request_held("adjust_points", world, api_support)
    url = f"approvals/{approval['id']}/approve/"
    headers = {"Idempotency-Key": "approve-1"}
    first = api_supervisor.post(url, {"reason": "verified"}, headers=headers)
    second = api_supervisor.post(url, {"reason": "verified"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()
    assert PointTransaction.objects.filter(kind="adjust").count() == 1
    other = api_supervisor.post(url, {"reason": "another"}, headers=headers)
    assert other.status_code == 422


def test_a_replayed_held_correction_is_the_same_request(world, api_support):
    path, body, size = correction_call("adjust_balance", world)
    set_policy(world["merchant"], "adjust_balance", size)
    headers = {"Idempotency-Key": "adjust-1"}
    first = api_support.post(path, {**body, "reason": "customer complained"}, headers=headers)
    second = api_support.post(path, {**body, "reason": "customer complained"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert Approval.objects.count() == 1


def test_a_preview_says_it_would_be_held_and_holds_nothing(world, api_support):
    path, body, size = correction_call("adjust_points", world)
    set_policy(world["merchant"], "adjust_points", size)
    response = api_support.post(path, {**body, "reason": "just looking", "preview": True})
    assert response.status_code == 200
    assert response["Preview"] == "true"
    assert response["Approval-Required"] == "policy"
    assert not Approval.objects.exists()
    assert not Event.objects.filter(type__startswith="approval.").exists()


def test_a_refused_correction_is_refused_not_held(world, api_support):
    path, _body, _size = correction_call("adjust_points", world)
    set_policy(world["merchant"], "adjust_points", 1)
    response = api_support.post(path, {"amount": -10_000, "reason": "too much"})
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_points"
    assert not Approval.objects.exists()


def test_list_filters_and_views(world, api_support, api_supervisor, api_auditor, supervisor):
    held = request_held("adjust_points", world, api_support)
    path, body, size = correction_call("deduct_stamp", world)
    set_policy(world["merchant"], "deduct_stamp", size)
    other = api_supervisor.post(path, {**body, "reason": "supervisor's own"}).json()["approval"]

    def ids(params):
        response = api_auditor.get("approvals/", params)
        assert response.status_code == 200, response.json()
        return [a["id"] for a in response.json()["results"]]

    assert ids({}) == [other["id"], held["id"]]
    assert ids({"kind": "adjust_points"}) == [held["id"]]
    assert ids({"requested_by": "supervisor-1"}) == [other["id"]]
    assert ids({"status": "pending"}) == [other["id"], held["id"]]
    assert ids({"status": "approved"}) == []
    assert api_auditor.get("approvals/", {"status": "bogus"}).status_code == 400
    assert api_auditor.get(f"approvals/{held['id']}/").json() == held
    # Auditors read, never decide; nobody deletes.
    assert api_auditor.post(f"approvals/{held['id']}/cancel/", {}).status_code == 403
    assert api_supervisor.call("DELETE", f"approvals/{held['id']}/").status_code == 405
    assert not Permission.objects.filter(codename="delete_approval").exists()
    log = api_auditor.get("audit-log/", {"model": "approval"}).json()["results"]
    assert {v["object_id"] for v in log} == {held["id"], other["id"]}


def test_the_admin_channel_holds_too(world, support):
    """`submit` is what every surface calls: the admin's channel is held the same way."""
    set_policy(world["merchant"], "adjust_points", 5)
    submitted = approvals.submit(
        corrections.BY_KIND["adjust_points"],
        actor=support,
        channel=Channel.ADMIN,
        target=world["customer"],
        reason="from the admin",
        amount=5,
    )
    assert submitted.held and submitted.approval.channel == "admin"
    assert not BalanceUpdate.objects.filter(reason="from the admin").exists()


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM ledger_approval WHERE id = %s",
        "UPDATE ledger_approval SET amount = -70 WHERE id = %s",
        "UPDATE ledger_approval SET requested_by_id = NULL WHERE id = %s",
        "UPDATE ledger_historicalapproval SET reason = 'rewritten' WHERE id = %s",
    ],
)
@postgres_only
def test_the_database_keeps_requests_as_they_were_made(statement, world, api_support):
    approval = request_held("adjust_points", world, api_support)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [approval["id"]])
    assert Approval.objects.get().amount == -7


@postgres_only
def test_the_database_keeps_a_decision(world, api_support, api_supervisor):
    approval = request_held("adjust_points", world, api_support)
    api_supervisor.post(f"approvals/{approval['id']}/reject/", {"reason": "no way"})
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_approval SET status = 'pending', decided_at = NULL WHERE id = %s",
            [approval["id"]],
        )
    assert Approval.objects.get().status == "rejected"
