import pytest

from ledger import approvals
from ledger.models import ApprovalPolicy, Event

pytestmark = pytest.mark.django_db


def test_held_then_approved(world, api_support, support, supervisor, api_supervisor):
    customer = world["customer"]
    approvals.setting_save(
        ApprovalPolicy(),
        actor=None,
        channel="command",
        merchant=world["merchant"],
        kind="adjust_points",
        threshold=5,
    )
    # below: applied
    r = api_support.post(
        f"customers/{customer.pk}/adjust-points/", {"amount": 4, "reason": "goodwill"}
    )
    assert r.status_code == 200, r.json()
    r = api_support.post(
        f"customers/{customer.pk}/adjust-points/", {"amount": 5, "reason": "goodwill"}
    )
    assert r.status_code == 202, r.json()
    approval = r.json()["approval"]
    assert approval["status"] == "pending"
    r = api_supervisor.post(f"approvals/{approval['id']}/approve/", {"reason": "checked"})
    assert r.status_code == 200, r.json()
    assert r.json()["approval"]["status"] == "approved", r.json()
    ev = Event.objects.filter(type="points.adjusted").order_by("-id").first()
    assert ev.data["approval"]["approved_by"] == "supervisor-1"
    assert ev.actor_name == "support-1"
    print(r.json())
