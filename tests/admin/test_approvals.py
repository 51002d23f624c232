"""Four-eyes approvals in the admin: held corrections, the queue, approve/reject/cancel, and the
policies and staff limits pages, each through the admin URLs with real role users."""

import pytest

from accounts.models import Customer
from ledger import approvals, history, services
from ledger.models.approvals import Approval, ApprovalPolicy, StaffLimit
from ledger.roles import staff_create
from loyalty.audit import Channel
from tests import factories
from tests.admin.conftest import login
from tests.admin.utils import confirm_action, messages_of, post_action, preview_token_of
from tests.helpers import fund

pytestmark = pytest.mark.django_db

REASON = "Goodwill for the broken coffee machine"
QUEUE = "/admin/ledger/approval/"


def page(approval) -> str:
    return f"{QUEUE}{approval.pk}/change/"


def decide_url(approval, decision: str) -> str:
    return f"{QUEUE}{approval.pk}/decide/{decision}/"


@pytest.fixture
def supervisor(db):
    user, _ = staff_create(username="supervisor-1", role="supervisor", password="pw-for-tests-1")
    return user


@pytest.fixture
def supervisor2(db):
    user, _ = staff_create(username="supervisor-2", role="supervisor", password="pw-for-tests-1")
    return user


@pytest.fixture
def supervisor_client(supervisor):
    return login(supervisor)


@pytest.fixture
def policy(merchant, superuser):
    return approvals.setting_save(
        ApprovalPolicy(),
        actor=superuser,
        channel=Channel.COMMAND,
        merchant=merchant,
        kind="adjust_points",
        threshold=100,
        reason="Large adjustments need a second person",
    )


@pytest.fixture
def rich(customer):
    return fund(customer, points=500)


def hold(client, customer, amount=150):
    """Adjust points through the admin's action as the user of `client`; returns the request."""
    response = confirm_action(
        client, Customer, "adjust_points", [customer], REASON, amount=str(amount)
    )
    assert response.status_code == 302
    return response, Approval.objects.order_by("-pk").first()


# --- a correction that needs approval is held, not applied ---------------------------------


def test_preview_says_which_customers_would_be_held_and_why(support_client, policy, rich):
    response = post_action(
        support_client, Customer, "adjust_points", [rich], preview="1", reason=REASON, amount="150"
    )

    assert response.status_code == 200
    (outcome,) = response.context["outcomes"]
    assert outcome.held and outcome.after is None and outcome.refusal is None
    html = response.content.decode()
    assert "Held for approval:" in html and "1 will be held for approval" in html
    assert not Approval.objects.exists()  # the preview stored nothing


def test_held_adjustment_changes_nothing_and_links_to_its_request(support_client, policy, rich):
    response, approval = hold(support_client, rich)

    rich.refresh_from_db()
    assert rich.points == 500
    assert approval.status == "pending" and approval.requested_by.username == "support-1"
    (message,) = messages_of(response)
    assert message.startswith("Held for approval: 1 customer")
    assert f'href="{page(approval)}"' in message


def test_below_the_threshold_is_applied_at_once(support_client, policy, rich):
    response, _ = hold(support_client, rich, amount=99)

    rich.refresh_from_db()
    assert rich.points == 599 and not Approval.objects.exists()
    assert messages_of(response)[0].startswith("Adjusted the points of <a href=")


# --- the queue: who sees what ----------------------------------------------------------------


@pytest.fixture
def pending(support_client, policy, rich):
    return hold(support_client, rich)[1]


def test_queue_lists_pending_first_with_what_it_would_do_now(supervisor_client, pending, rich):
    response = supervisor_client.get(QUEUE)

    assert response.status_code == 200
    html = response.content.decode()
    assert "500 points → 650 points" in html and "support-1" in html and REASON in html


@pytest.mark.parametrize("role", ["support", "auditor", "supervisor"])
def test_every_reader_sees_the_queue_and_the_request(request, pending, role):
    client = request.getfixturevalue(f"{role}_client")
    assert client.get(QUEUE).status_code == 200
    assert client.get(page(pending)).status_code == 200
    assert client.get(f"{QUEUE}{pending.pk}/history/").status_code == 200


def test_user_without_a_role_sees_no_queue(norole_client, pending):
    assert norole_client.get(QUEUE).status_code == 403


@pytest.mark.parametrize("role", ["support", "auditor"])
def test_readers_without_the_approve_permission_get_no_button_and_a_forbidden_post(
    request, pending, role
):
    client = request.getfixturevalue(f"{role}_client")
    html = client.get(page(pending)).content.decode()
    assert decide_url(pending, "approve") not in html
    assert decide_url(pending, "reject") not in html

    for decision in ("approve", "reject"):
        response = client.post(decide_url(pending, decision), {"post": "yes", "reason": REASON})
        assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_supervisor_is_offered_approve_and_reject_not_cancel(supervisor_client, pending):
    html = supervisor_client.get(page(pending)).content.decode()
    assert decide_url(pending, "approve") in html and decide_url(pending, "reject") in html
    assert decide_url(pending, "cancel") not in html


# --- approve and reject need a reason ----------------------------------------------------


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize("reason", ["", "ab", "x" * 501])
def test_approve_and_reject_without_a_valid_reason_show_the_page_again(
    supervisor_client, pending, decision, reason
):
    response = supervisor_client.post(
        decide_url(pending, decision), {"post": "yes", "reason": reason}
    )

    assert response.status_code == 200 and response.context["form"].errors["reason"]
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_approve_page_previews_the_effect_now(supervisor_client, pending):
    response = supervisor_client.get(decide_url(pending, "approve"))

    assert response.status_code == 200
    assert "500 points → 650 points" in response.content.decode()
    assert 'name="reason"' in response.content.decode()


def test_approving_applies_it_attributed_to_the_requester_with_the_approver(
    supervisor_client, pending, rich
):
    response = supervisor_client.post(
        decide_url(pending, "approve"), {"post": "yes", "reason": "Checked with the store"}
    )

    assert response.status_code == 302 and response["Location"] == page(pending)
    pending.refresh_from_db()
    rich.refresh_from_db()
    assert pending.status == "approved" and pending.decided_by.username == "supervisor-1"
    assert rich.points == 650
    version = history.object_history(Customer, rich.pk)[0]
    assert (version.actor, version.channel) == ("support-1", "admin")
    assert messages_of(response) == [f"Approval request #{pending.pk} is now approved."]


def test_rejecting_changes_nothing_and_records_the_reason(supervisor_client, pending, rich):
    response = supervisor_client.post(
        decide_url(pending, "reject"), {"post": "yes", "reason": "Not agreed with the store"}
    )

    assert response.status_code == 302
    pending.refresh_from_db()
    rich.refresh_from_db()
    assert (pending.status, pending.decision_reason) == ("rejected", "Not agreed with the store")
    assert rich.points == 500


def test_a_decided_request_offers_no_button_and_refuses_a_second_decision(
    supervisor_client, supervisor2, pending
):
    supervisor_client.post(decide_url(pending, "reject"), {"post": "yes", "reason": "No thanks"})
    other = login(supervisor2)

    html = other.get(page(pending)).content.decode()
    assert decide_url(pending, "approve") not in html
    response = other.post(decide_url(pending, "approve"), {"post": "yes", "reason": "Yes please"})

    assert response.status_code == 302
    assert messages_of(response)[0].startswith("Refused:")
    pending.refresh_from_db()
    assert pending.status == "rejected"


# --- nobody approves their own request ---------------------------------------------------


@pytest.fixture
def own(supervisor_client, policy, rich):
    """A request the supervisor made."""
    return hold(supervisor_client, rich)[1]


def test_self_approval_is_not_offered_and_the_page_says_why(supervisor_client, own):
    html = supervisor_client.get(page(own)).content.decode()

    assert decide_url(own, "approve") not in html and decide_url(own, "reject") not in html
    assert "another person must approve" in html
    assert decide_url(own, "cancel") in html
    confirmation = supervisor_client.get(decide_url(own, "approve")).content.decode()
    assert (
        "another person must approve" in confirmation
        and 'id="confirm-decision"' not in confirmation
    )


def test_self_approval_post_is_refused_and_changes_nothing(supervisor_client, own, rich):
    response = supervisor_client.post(decide_url(own, "approve"), {"post": "yes", "reason": REASON})

    assert response.status_code == 302
    assert messages_of(response)[-1] == "Refused: Nobody may decide their own approval request."
    own.refresh_from_db()
    rich.refresh_from_db()
    assert own.status == "pending" and rich.points == 500


# --- cancel: the requester only --------------------------------------------------------------


def test_requester_cancels_their_request(support_client, pending, rich):
    html = support_client.get(page(pending)).content.decode()
    assert decide_url(pending, "cancel") in html

    response = support_client.post(decide_url(pending, "cancel"), {"post": "yes"})

    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == "canceled"


def test_others_cannot_cancel(supervisor_client, pending):
    assert supervisor_client.post(decide_url(pending, "cancel"), {"post": "yes"}).status_code == 403
    pending.refresh_from_db()
    assert pending.status == "pending"


# --- never a delete ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["support", "auditor", "supervisor", "superuser"])
def test_nobody_deletes_a_request(request, pending, role):
    client = request.getfixturevalue(f"{role}_client")

    assert client.get(f"{QUEUE}{pending.pk}/delete/").status_code in (302, 403)
    changelist = client.get(QUEUE)
    assert "delete_selected" not in changelist.content.decode()
    assert Approval.objects.filter(pk=pending.pk).exists()


# --- the customer's page and the dashboard -------------------------------------------------


def test_customer_page_lists_its_pending_requests(support_client, pending, rich):
    html = support_client.get(f"/admin/accounts/customer/{rich.pk}/change/").content.decode()
    assert f'href="{page(pending)}"' in html


def test_dashboard_counts_requests(superuser_client, pending):
    response = superuser_client.get("/admin/dashboard/")
    assert response.context["data"].approvals["requested"] == 1


# --- policies and staff limits ---------------------------------------------------------------


POLICIES = "/admin/ledger/approvalpolicy/"
LIMITS = "/admin/ledger/stafflimit/"


def test_superuser_creates_a_policy_through_the_service_and_it_is_audited(
    superuser_client, merchant
):
    response = superuser_client.post(
        f"{POLICIES}add/",
        {"merchant": merchant.pk, "kind": "adjust_points", "threshold": "100"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    policy = ApprovalPolicy.objects.get()
    assert (policy.kind, policy.threshold) == ("adjust_points", 100)
    row = ApprovalPolicy.history.get()
    assert (row.history_user.username, row.channel) == ("root-1", "admin")


def test_superuser_creates_a_staff_limit(superuser_client, support):
    response = superuser_client.post(
        f"{LIMITS}add/",
        {
            "user": support.pk,
            "kind": "*",
            "max_amount": "50",
            "daily_amount": "",
            "daily_count": "",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    limit = StaffLimit.objects.get()
    assert (limit.user, limit.kind, limit.max_amount) == (support, "*", 50)
    assert StaffLimit.history.get().channel == "admin"


@pytest.mark.parametrize("role", ["support", "supervisor", "auditor"])
def test_staff_without_the_manage_permission_cannot_add_or_change_policies(request, role, policy):
    client = request.getfixturevalue(f"{role}_client")

    assert client.get(f"{POLICIES}add/").status_code == 403
    assert client.get(f"{LIMITS}add/").status_code == 403
    client.post(
        f"{POLICIES}{policy.pk}/change/",
        {"merchant": policy.merchant_id, "kind": "adjust_points", "threshold": "1"},
    )
    policy.refresh_from_db()
    assert policy.threshold == 100


def test_requester_filter_me_shows_only_my_requests(
    support_client, supervisor_client, pending, rich
):
    mine = hold(supervisor_client, rich, amount=120)[1]

    response = support_client.get(QUEUE, {"requested_by": "me"})

    assert [a.pk for a in response.context["cl"].result_list] == [pending.pk]
    response = supervisor_client.get(QUEUE, {"requested_by": "me"})
    assert [a.pk for a in response.context["cl"].result_list] == [mine.pk]


def test_queue_lists_pending_before_decided_ones(supervisor_client, supervisor2, pending, rich):
    later = hold(login(supervisor2), rich, amount=130)[1]
    supervisor_client.post(decide_url(later, "reject"), {"post": "yes", "reason": "Not now"})
    newest = hold(login(supervisor2), rich, amount=140)[1]

    response = supervisor_client.get(QUEUE)

    assert [a.pk for a in response.context["cl"].result_list] == [newest.pk, pending.pk, later.pk]


def test_queue_previews_cost_a_bounded_number_of_queries_per_row(
    supervisor_client, policy, merchant, django_assert_max_num_queries
):
    requester, _ = staff_create(username="support-9", role="support", password="pw-for-tests-1")
    client = login(requester)
    for _ in range(30):
        hold(client, fund(factories.CustomerFactory(merchant=merchant), points=1))

    # Session, user, 2 permission queries, requester choices, capped count, page; then per
    # pending row on the page (25 at most): its target, and the service run in a rolled-back
    # transaction (one statement and its savepoints).
    with django_assert_max_num_queries(7 + 25 * 7):
        response = supervisor_client.get(QUEUE)
    assert len(response.context["cl"].result_list) == 25


def test_an_expired_request_reads_expired_offers_nothing_and_refuses_approval(
    supervisor_client, support_client, policy, rich, settings
):
    settings.APPROVAL_TTL_SECONDS = 0  # due as soon as it is made (the worker has not run)
    pending = hold(support_client, rich)[1]

    html = supervisor_client.get(page(pending)).content.decode()
    assert decide_url(pending, "approve") not in html and "expired" in html
    response = supervisor_client.post(
        decide_url(pending, "approve"), {"post": "yes", "reason": "Too late now"}
    )

    assert messages_of(response) == ["Refused: This approval request has expired."]
    rich.refresh_from_db()
    assert rich.points == 500


def test_an_approval_refused_now_ends_failed_and_says_why(
    supervisor_client, support_client, policy, rich
):
    response = confirm_action(
        support_client, Customer, "adjust_points", [rich], REASON, amount="-450"
    )
    approval = Approval.objects.get()
    services_take = confirm_action(
        support_client, Customer, "adjust_points", [rich], REASON, amount="-90"
    )
    assert response.status_code == services_take.status_code == 302
    rich.refresh_from_db()
    assert rich.points == 410  # the small one applied, the big one waits

    response = supervisor_client.post(
        decide_url(approval, "approve"), {"post": "yes", "reason": "Agreed with the store"}
    )

    (message,) = messages_of(response)
    assert message.startswith(f"Approval request #{approval.pk} failed, nothing changed:")
    approval.refresh_from_db()
    rich.refresh_from_db()
    assert approval.status == "failed" and rich.points == 410
    assert "Refused when approved" in supervisor_client.get(page(approval)).content.decode()


def test_dashboard_counts_each_step(
    superuser_client, supervisor_client, pending, rich, support_client
):
    supervisor_client.post(decide_url(pending, "approve"), {"post": "yes", "reason": "Fine by me"})
    other = hold(support_client, rich, amount=110)[1]
    supervisor_client.post(decide_url(other, "reject"), {"post": "yes", "reason": "Not this one"})

    response = superuser_client.get("/admin/dashboard/")

    assert response.context["data"].approvals == {
        "requested": 2,
        "approved": 1,
        "rejected": 1,
        "expired": 0,
    }
    assert 'id="approvals"' in response.content.decode()


def test_superuser_deletes_a_policy_through_the_service_and_it_is_audited(superuser_client, policy):
    response = superuser_client.post(f"{POLICIES}{policy.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not ApprovalPolicy.objects.exists()
    deleted = ApprovalPolicy.history.order_by("-history_id").first()
    assert (deleted.history_type, deleted.history_user.username, deleted.channel) == (
        "-",
        "root-1",
        "admin",
    )


def test_holder_of_manage_stafflimit_manages_limits_not_policies(support, policy):
    from django.contrib.auth.models import Permission

    manager, _ = staff_create(username="limits-1", role="support", password="pw-for-tests-1")
    manager.user_permissions.add(Permission.objects.get(codename="manage_stafflimit"))
    client = login(manager)

    assert client.get(f"{LIMITS}add/").status_code == 200
    assert client.get(f"{POLICIES}add/").status_code == 403
    response = client.post(
        f"{LIMITS}add/",
        {"user": support.pk, "kind": "adjust_points", "daily_count": "3", "reason": "New hire"},
    )
    assert response.status_code == 302
    row = StaffLimit.history.get()
    assert (row.history_user, row.history_change_reason) == (manager, "New hire")


def test_policy_form_refuses_a_second_policy_of_the_same_kind(superuser_client, policy):
    response = superuser_client.post(
        f"{POLICIES}add/",
        {"merchant": policy.merchant_id, "kind": "adjust_points", "threshold": "5"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert ApprovalPolicy.objects.count() == 1


def test_status_filter_reads_an_overdue_pending_request_as_expired(
    supervisor_client, pending, rich, settings
):
    settings.APPROVAL_TTL_SECONDS = 0  # due as soon as it is made (the worker has not run)
    overdue = hold(support_client_of(pending), rich, amount=125)[1]

    def listed(status):
        response = supervisor_client.get(QUEUE, {"status": status})
        return [a.pk for a in response.context["cl"].result_list]

    assert listed("pending") == [pending.pk]
    assert listed("expired") == [overdue.pk]
    # Pending first means pending and not yet due: the overdue one sorts with the decided.
    assert [a.pk for a in supervisor_client.get(QUEUE).context["cl"].result_list] == [
        pending.pk,
        overdue.pk,
    ]


def support_client_of(approval):
    return login(approval.requested_by)


def test_a_request_beyond_the_registry_names_its_target_and_links_it_when_it_can(customer):
    from django.contrib import admin

    model_admin = admin.site._registry[Approval]
    unknown = Approval(kind="batch", target_model="ledger.nosuchbatch", target_id=3)
    known = Approval(kind="batch", target_model="accounts.customer", target_id=customer.pk)

    assert model_admin.target_link(unknown) == "ledger.nosuchbatch #3"
    assert f'href="/admin/accounts/customer/{customer.pk}/change/"' in model_admin.target_link(
        known
    )


def test_the_object_page_button_holds_too_and_approving_applies_it(
    support_client, supervisor_client, superuser, stamp
):
    approvals.setting_save(
        ApprovalPolicy(),
        actor=superuser,
        channel=Channel.COMMAND,
        merchant=stamp.card.merchant,
        kind="deduct_stamp",
        threshold=1,
    )
    services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=stamp)  # 0/10 -> 1/10
    url = f"/admin/ledger/stamp/{stamp.pk}/correction/deduct_stamp/"

    preview = support_client.get(url)
    assert "Held for approval:" in preview.content.decode()
    token = preview_token_of(preview)
    response = support_client.post(url, {"post": "yes", "reason": REASON, "preview_token": token})

    assert response.status_code == 302
    stamp.refresh_from_db()
    approval = Approval.objects.get()
    assert stamp.count == 1 and approval.target_id == stamp.pk
    assert f'href="{page(approval)}"' in messages_of(response)[-1]
    assert "1/10 → 0/10" in supervisor_client.get(page(approval)).content.decode()
    supervisor_client.post(decide_url(approval, "approve"), {"post": "yes", "reason": "Agreed"})
    stamp.refresh_from_db()
    assert stamp.count == 0


@pytest.mark.parametrize("role", ["support", "auditor", "supervisor"])
def test_policies_and_limits_are_read_only_for_the_roles(request, role, policy):
    client = request.getfixturevalue(f"{role}_client")

    response = client.get(POLICIES)
    assert response.status_code == 200 and f"{POLICIES}add/" not in response.content.decode()
    assert client.get(LIMITS).status_code == 200
    assert client.post(f"{POLICIES}{policy.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApprovalPolicy.objects.filter(pk=policy.pk).exists()
