"""Roles in the admin: Support corrects, Auditor reads everything and changes nothing."""

import pytest

from accounts.models import Customer
from ledger.history import AUDITED_MODELS
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from tests import factories
from tests.admin.utils import changelist, confirm_action, confirm_object, deduct
from tests.helpers import fund

pytestmark = pytest.mark.django_db

REASON = "Forged or not, a reason"
ACTIONS = [
    "deduct_stamp",
    "cancel_balance_update",
    "revert_points",
    "adjust_balance",
    "adjust_points",
]


@pytest.fixture
def cases(customer, store, card, partner):
    fund(customer, balance=100, points=100, store=store)
    stamp = factories.StampFactory(card=card, customer=customer, count=2)
    update = BalanceUpdate.objects.get(customer=customer)
    deduction = deduct(partner, customer, 10, "redeem-1")
    return {
        "deduct_stamp": (Stamp, [stamp], {}),
        "cancel_balance_update": (BalanceUpdate, [update], {}),
        "revert_points": (PointTransaction, [deduction], {}),
        "adjust_balance": (Customer, [customer], {"amount": "5"}),
        "adjust_points": (Customer, [customer], {"amount": "5"}),
    }


def snapshot():
    """Everything a correction could change: values, statuses and every history table."""
    return (
        list(Stamp.objects.order_by("pk").values_list("pk", "count")),
        list(BalanceUpdate.objects.order_by("pk").values_list("pk", "status")),
        PointTransaction.objects.count(),
        list(Customer.objects.order_by("pk").values_list("pk", "balance", "points")),
        {label: model.history.count() for label, model in AUDITED_MODELS.items()},
    )


def object_url(model, obj, action):
    return f"{changelist(model)}{obj.pk}/correction/{action}/"


@pytest.mark.parametrize("action", ACTIONS)
def test_support_is_offered_the_action_and_the_button(support_client, cases, action):
    model, objects, _ = cases[action]

    page = support_client.get(changelist(model))
    choices = dict(page.context["action_form"].fields["action"].choices)
    assert action in choices and "delete_selected" not in choices
    change_page = support_client.get(f"{changelist(model)}{objects[0].pk}/change/")
    assert object_url(model, objects[0], action) in change_page.content.decode()


@pytest.mark.parametrize("action", ACTIONS)
def test_support_can_run_the_action(support_client, cases, action):
    model, objects, data = cases[action]
    before = snapshot()

    response = confirm_action(support_client, model, action, objects, REASON, **data)

    assert response.status_code == 302
    assert snapshot() != before


@pytest.mark.parametrize("action", ACTIONS)
def test_auditor_sees_no_action_and_no_button(auditor_client, cases, action):
    model, objects, _ = cases[action]

    page = auditor_client.get(changelist(model))
    assert page.status_code == 200
    assert page.context["action_form"] is None
    assert 'name="_selected_action"' not in page.content.decode()
    change_page = auditor_client.get(f"{changelist(model)}{objects[0].pk}/change/")
    assert change_page.status_code == 200
    html = change_page.content.decode()
    assert "/correction/" not in html and 'class="backoffice-action"' not in html
    assert 'name="_save"' not in html and 'name="_continue"' not in html  # read-only


@pytest.mark.parametrize("action", ACTIONS)
def test_auditor_forged_action_post_is_refused_and_changes_nothing(auditor_client, cases, action):
    model, objects, data = cases[action]
    before = snapshot()

    response = confirm_action(auditor_client, model, action, objects, REASON, **data)

    assert response.status_code == 200  # the changelist again: no such action for this user
    assert response.context["action_form"] is None
    assert snapshot() == before


@pytest.mark.parametrize("action", ACTIONS)
def test_auditor_forged_post_to_the_object_button_is_forbidden(auditor_client, cases, action):
    model, objects, data = cases[action]
    before = snapshot()
    url = object_url(model, objects[0], action)

    assert auditor_client.get(url).status_code == 403
    assert auditor_client.post(url, {"post": "yes", "reason": REASON, **data}).status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize("action", ACTIONS)
def test_user_without_a_role_sees_nothing_and_changes_nothing(norole_client, cases, action):
    model, objects, data = cases[action]
    before = snapshot()

    assert norole_client.get(changelist(model)).status_code == 403
    assert confirm_action(norole_client, model, action, objects, REASON, **data).status_code == 403
    url = object_url(model, objects[0], action)
    assert norole_client.post(url, {"post": "yes", "reason": REASON, **data}).status_code == 403
    history = f"{changelist(model)}{objects[0].pk}/history/"
    assert norole_client.get(history).status_code == 403
    assert snapshot() == before


def test_user_without_a_role_cannot_read_the_audit_log_or_dashboard(norole_client):
    for url in ["/admin/audit-log/", "/admin/audit-log.csv", "/admin/dashboard/"]:
        assert norole_client.get(url).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    for url in ["/admin/audit-log/", "/admin/dashboard/", "/admin/ledger/stamp/1/history/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("action", ACTIONS)
def test_superuser_can_run_every_action(superuser_client, cases, action):
    model, objects, data = cases[action]
    before = snapshot()

    response = confirm_object(
        superuser_client, object_url(model, objects[0], action), REASON, **data
    )

    assert response.status_code == 302
    assert snapshot() != before


@pytest.mark.parametrize("role_client", ["support_client", "auditor_client", "superuser_client"])
@pytest.mark.parametrize("model", [Stamp, BalanceUpdate, PointTransaction, Customer])
def test_nothing_can_be_deleted_by_anyone(request, cases, role_client, model):
    client = request.getfixturevalue(role_client)
    obj = model.objects.first()
    before = snapshot()

    page = client.get(f"{changelist(model)}{obj.pk}/change/")
    assert "deletelink" not in page.content.decode()
    assert client.get(f"{changelist(model)}{obj.pk}/delete/").status_code == 403
    assert client.post(f"{changelist(model)}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    forged = client.post(
        changelist(model),
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert forged.status_code in (200, 302)  # no such action: the changelist, or "No action"
    assert snapshot() == before
