"""Four-eyes in the browser: Support's large adjustment is held, a Supervisor approves it in
the admin queue, and the customer's history names both (Chromium at 1280x800)."""

import pytest

from accounts.models import Customer
from ledger import approvals
from ledger.models import Approval, ApprovalPolicy
from ledger.roles import staff_create
from loyalty.audit import Channel
from tests import factories
from tests.browser.conftest import SCREENSHOTS
from tests.helpers import fund

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-tests"


@pytest.fixture
def desk(page):
    """The page at 1280x800, the size the brief's screenshots are read at."""
    page.set_viewport_size({"width": 1280, "height": 800})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return page


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def shop(roles):
    merchant = factories.MerchantFactory(name="Four Eyes Coffee")
    customer = fund(
        factories.CustomerFactory(merchant=merchant, email="grace@example.com"), points=200
    )
    root, _ = staff_create(username="root-b", role="admin", password=PASSWORD)
    approvals.setting_save(
        ApprovalPolicy(),
        actor=root,
        channel=Channel.COMMAND,
        merchant=merchant,
        kind="adjust_points",
        threshold=100,
    )
    staff_create(username="support-b", role="support", password=PASSWORD)
    staff_create(username="supervisor-b", role="supervisor", password=PASSWORD)
    return customer


def log_in(page, username: str) -> None:
    page.context.clear_cookies()
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_support_adjustment_is_held_and_a_supervisor_approves_it(desk, shop):
    page, customer = desk, shop

    # Support asks for 150 points: the policy (>= 100) holds it.
    log_in(page, "support-b")
    page.goto(f"/admin/accounts/customer/{customer.pk}/change/")
    page.click("text=Adjust points")
    page.fill("input[name=amount]", "150")
    page.fill("textarea[name=reason]", "Goodwill for the broken machine")
    page.click("input[name=preview]")
    page.wait_for_selector("#correction-preview")
    assert "Held for approval" in page.inner_text("#correction-preview")
    assert "will be held for approval" in page.inner_text("#correction-summary")
    shot(page, "approvals-support-preview-held")
    page.click("#confirm-correction")
    message = page.inner_text(".messagelist")
    assert "Held for approval: 1 customer" in message
    shot(page, "approvals-support-held-message")
    customer.refresh_from_db()
    assert customer.points == 200
    approval = Approval.objects.get()

    # The link in the message is the request's page; Support may cancel, not approve.
    page.click(f".messagelist a[href$='/approval/{approval.pk}/change/']")
    page.wait_for_url(f"**/approval/{approval.pk}/change/")
    shot(page, "approvals-support-request-page")
    assert page.locator("text=Cancel request").count() == 1
    assert page.locator("a:text-is('Approve')").count() == 0

    # The supervisor's queue: pending first, what it would do now.
    log_in(page, "supervisor-b")
    page.goto("/admin/ledger/approval/")
    row = page.inner_text("#result_list tbody tr:first-child")
    assert "support-b" in row and "200 points → 350 points" in row
    shot(page, "approvals-supervisor-queue")
    page.click(f"#result_list a[href$='/approval/{approval.pk}/change/']")
    page.wait_for_url(f"**/approval/{approval.pk}/change/")
    page.click("a:text-is('Approve')")
    page.wait_for_selector("#approval-preview")
    assert "200 points → 350 points" in page.inner_text("#approval-preview")
    page.click("#confirm-decision")  # no reason: the browser refuses to submit
    assert page.locator("textarea[name=reason]:invalid").count() == 1
    page.fill("textarea[name=reason]", "Checked with the store manager")
    shot(page, "approvals-supervisor-approve-confirmation")
    page.click("#confirm-decision")
    assert f"Approval request #{approval.pk} is now approved." in page.inner_text(".messagelist")
    shot(page, "approvals-supervisor-approved")

    customer.refresh_from_db()
    assert customer.points == 350

    # The customer's history: Support as the actor, the supervisor recorded as approver.
    page.goto(f"/admin/accounts/customer/{customer.pk}/history/")
    first = page.inner_text("#history-versions > tbody > tr:first-child")
    assert "support-b" in first and "supervisor-b" in first
    assert "Goodwill for the broken machine" in first
    shot(page, "approvals-customer-history")

    # The request's own history: asked by Support, approved by the supervisor, with reasons.
    page.goto(f"/admin/ledger/approval/{approval.pk}/history/")
    versions = page.inner_text("#history-versions")
    assert "Approval requested" in versions and "Request approved" in versions
    assert "Checked with the store manager" in versions and "supervisor-b" in versions
    shot(page, "approvals-request-history")

    # The dashboard counts the steps.
    page.goto("/admin/dashboard/")
    counts = page.inner_text("#approvals")
    assert "REQUESTED" in counts.upper() and "APPROVED" in counts.upper()
    assert page.locator("#approvals td").all_inner_texts() == ["1", "1", "0", "0"]
    page.locator("#approvals").screenshot(path=str(SCREENSHOTS / "approvals-dashboard.png"))
    assert Customer.objects.get(pk=customer.pk).points == 350
