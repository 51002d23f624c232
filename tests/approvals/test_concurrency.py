"""Approvals and limits under concurrent requests, on PostgreSQL with real threads: a request is
decided once, and a user's daily limits hold exactly (never more applied directly than they
allow)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission

from ledger import approvals, reconcile
from ledger.models import (
    Approval,
    ApprovalPolicy,
    Event,
    PointTransaction,
    StaffDailyUsage,
    StaffLimit,
)
from loyalty.audit import Channel
from tests import factories
from tests.api.conftest import StaffClient, token_for
from tests.helpers import fund, postgres_only, run_concurrently

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]

CORRECTING = ["view_customer", "adjust_points_customer", "view_approval"]


def staff(username: str, *codenames: str):
    """A staff user with permissions given directly (a transactional test's flush keeps
    permissions but not necessarily the role groups)."""
    user = factories.UserFactory(username=username)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def setting(model, **fields):
    return approvals.setting_save(model(), actor=None, channel=Channel.COMMAND, **fields)


@pytest.fixture
def customer():
    return fund(factories.CustomerFactory(), points=1000)


def adjust(client: StaffClient, customer, amount: int):
    return client.post(
        f"customers/{customer.pk}/adjust-points/", {"amount": amount, "reason": "race"}
    )


def test_two_supervisors_approving_at_once_apply_it_once(customer, monkeypatch):
    requester = staff("requester", *CORRECTING)
    setting(ApprovalPolicy, merchant=customer.merchant, kind="adjust_points", threshold=5)
    held = adjust(StaffClient(token_for(requester)), customer, 50)
    assert held.status_code == 202
    approval_id = held.json()["approval"]["id"]
    clients = [
        StaffClient(token_for(staff(f"sup-{i}", "view_approval", "approve_correction")))
        for i in range(2)
    ]

    # Each decision takes a while once it runs, so that the two overlap for sure.
    measured = approvals._apply_measured

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return measured(*args, **kwargs)

    monkeypatch.setattr(approvals, "_apply_measured", slow)

    def approve(i: int):
        response = clients[i].post(f"approvals/{approval_id}/approve/", {"reason": "both of us"})
        return response.status_code, response.json()

    results = run_concurrently(2, approve)
    statuses = sorted(status for status, _body in results)
    assert statuses == [200, 409], results
    [conflict] = [body for status, body in results if status == 409]
    assert conflict["code"] == "already_decided"
    assert PointTransaction.objects.filter(kind="adjust").count() == 1
    customer.refresh_from_db()
    assert customer.points == 1050
    assert Approval.objects.get().status == "approved"
    assert Event.objects.filter(type="approval.approved").count() == 1
    assert Event.objects.filter(type="points.adjusted").count() == 1
    assert reconcile.run()[0] == []


@pytest.mark.parametrize(
    "limit", [{"daily_count": 3}, {"daily_amount": 3}], ids=["daily_count", "daily_amount"]
)
@pytest.mark.parametrize("kind", ["adjust_points", "*"])
def test_eight_concurrent_corrections_apply_exactly_what_the_limit_allows(customer, limit, kind):
    user = staff("racer", *CORRECTING)
    setting(StaffLimit, user=user, kind=kind, **limit)
    clients = [StaffClient(token_for(user)) for _ in range(8)]

    results = run_concurrently(8, lambda i: adjust(clients[i], customer, 1).status_code)
    assert sorted(results) == [200] * 3 + [202] * 5, results
    assert PointTransaction.objects.filter(kind="adjust").count() == 3
    assert Approval.objects.filter(status="pending").count() == 5
    held_because = set(Approval.objects.values_list("held_because", flat=True))
    assert held_because == {next(iter(limit))}
    customer.refresh_from_db()
    assert customer.points == 1003
    for counter in StaffDailyUsage.objects.filter(user=user):
        assert (counter.count, counter.amount) == (3, 3)
    assert reconcile.run()[0] == []
