"""Support corrects and Auditor reads, through the real admin pages in headless Chromium."""

import pytest

from ledger import history
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from ledger.roles import staff_create
from loyalty.audit import Channel
from partners.services import partner_create
from tests import factories
from tests.admin.utils import deduct
from tests.helpers import fund

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-tests"


@pytest.fixture
def shop(roles):
    merchant = factories.MerchantFactory(name="Browser Coffee")
    store = factories.StoreFactory(merchant=merchant)
    card = factories.StampCardFactory(merchant=merchant, max_stamps=10)
    customer = fund(
        factories.CustomerFactory(merchant=merchant, email="ada@example.com"),
        balance=100,
        points=200,
        store=store,
    )
    partner, _ = partner_create(
        actor=None, channel=Channel.COMMAND, name="Browser partner", merchants=[merchant]
    )
    stamp = factories.StampFactory(card=card, customer=customer, count=4)
    update = BalanceUpdate.objects.get(customer=customer)
    deduction = deduct(partner, customer, 50, "redeem-browser-1")
    staff_create(username="support-b", role="support", password=PASSWORD)
    staff_create(username="auditor-b", role="auditor", password=PASSWORD)
    return {"customer": customer, "stamp": stamp, "update": update, "deduction": deduction}


def log_in(page, username: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def confirm(page, reason: str) -> None:
    page.wait_for_selector("#correction-preview")
    page.fill("textarea[name=reason]", reason)
    page.click("#confirm-correction")


def run_bulk_action(page, changelist: str, pk: int, action: str) -> None:
    page.goto(changelist)
    page.check(f'input[name="_selected_action"][value="{pk}"]')
    page.select_option('select[name="action"]', action)
    page.click('.actions button[type="submit"]')


def test_support_corrects_a_stamp_a_balance_update_and_a_deduction(page, shop, screenshot):
    stamp, update, deduction = shop["stamp"], shop["update"], shop["deduction"]
    log_in(page, "support-b")

    # The button on the stamp's page.
    page.goto(f"/admin/ledger/stamp/{stamp.pk}/change/")
    page.click("text=Remove one stamp")
    page.wait_for_selector("#correction-preview")
    assert "4/10" in page.inner_text("#correction-preview")
    assert "3/10" in page.inner_text("#correction-preview")
    screenshot("support-remove-stamp-confirmation")
    confirm(page, "Scanned twice at the till")
    assert "Removed one stamp from " in page.inner_text(".messagelist")
    screenshot("support-remove-stamp-done")

    # Bulk actions from the changelists.
    run_bulk_action(page, "/admin/ledger/balanceupdate/", update.pk, "cancel_balance_update")
    assert "Canceled; balance 0" in page.inner_text("#correction-preview")
    page.click("#confirm-correction")  # no reason: the browser refuses to submit
    assert page.locator("textarea[name=reason]:invalid").count() == 1
    assert page.locator("#correction-preview").count() == 1
    confirm(page, "Credited to the wrong customer")
    assert f"Canceled {update}: " in page.inner_text(".messagelist")

    run_bulk_action(page, "/admin/ledger/pointtransaction/", deduction.pk, "revert_points")
    assert "150 points" in page.inner_text("#correction-preview")
    screenshot("support-revert-confirmation")
    confirm(page, "Partner charged the redemption twice")
    assert f"Reverted {deduction}: " in page.inner_text(".messagelist")

    stamp.refresh_from_db()
    update.refresh_from_db()
    assert stamp.count == 3 and update.status == "Canceled"
    assert PointTransaction.objects.filter(reverts=deduction).exists()

    # The new history entries carry the reasons.
    page.goto(f"/admin/ledger/stamp/{stamp.pk}/history/")
    first_row = page.inner_text("#history-versions > tbody > tr:first-child")
    assert "Scanned twice at the till" in first_row and "support-b" in first_row
    screenshot("support-stamp-history")
    page.goto(f"/admin/ledger/balanceupdate/{update.pk}/history/")
    assert "Credited to the wrong customer" in page.inner_text("#history-versions")
    latest = history.object_history(Stamp, stamp.pk)[0]
    assert (latest.actor, latest.channel) == ("support-b", "admin")


def test_auditor_reads_the_audit_log_and_a_history_diff_and_sees_no_action(page, shop, screenshot):
    stamp = shop["stamp"]
    from ledger import services

    services.stamp_remove(
        actor=None, channel=Channel.COMMAND, stamp=stamp, reason="Reconciled with the till"
    )
    log_in(page, "auditor-b")

    page.goto("/admin/audit-log/")
    log = page.inner_text("#audit-log")
    assert "Reconciled with the till" in log and "Browser partner" in log
    # Names, not numbers: the object by its name (a link), the operation by its label, the
    # time with its zone.
    assert f"{stamp.card.name} of {stamp.customer}" in log and "Stamp removed" in log
    assert " UTC" in log
    assert page.locator(f'#audit-log a[href$="/admin/ledger/stamp/{stamp.pk}/change/"]').count()
    screenshot("auditor-audit-log")
    page.fill("#id_q", "reconciled")
    page.click("#audit-log-filters input[type=submit]")
    assert page.locator("#audit-log > tbody > tr").count() == 1

    page.goto(f"/admin/ledger/stamp/{stamp.pk}/history/")
    first_row = page.locator("#history-versions > tbody > tr").first
    assert "Count" in first_row.inner_text()
    assert first_row.locator(".old").inner_text() == "4"
    assert first_row.locator(".new").inner_text() == "3"
    screenshot("auditor-stamp-history")

    for changelist in [
        "/admin/ledger/stamp/",
        "/admin/ledger/balanceupdate/",
        "/admin/ledger/pointtransaction/",
        "/admin/accounts/customer/",
    ]:
        page.goto(changelist)
        assert page.locator('select[name="action"]').count() == 0, changelist
        assert page.locator('input[name="_selected_action"]').count() == 0, changelist
    page.goto(f"/admin/ledger/stamp/{stamp.pk}/change/")
    assert page.locator("a.backoffice-action").count() == 0
    assert page.locator('input[name="_save"]').count() == 0
    page.goto(f"/admin/accounts/customer/{shop['customer'].pk}/change/")
    assert page.locator("a.backoffice-action").count() == 0
    screenshot("auditor-customer-page")

    page.goto("/admin/dashboard/")
    assert page.locator("svg.chart").count() == 4
    screenshot("auditor-dashboard")
