"""The confirmation page in headless Chromium (1280x800): "Yes" applies only what was
previewed; a changed amount asks for a new preview."""

import pytest

from ledger.models import PointTransaction
from ledger.roles import staff_create
from tests import factories
from tests.helpers import fund

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-tests"
REASON = "Goodwill after a failed redemption"


@pytest.fixture
def customer(roles):
    merchant = factories.MerchantFactory(name="Browser Coffee")
    customer = fund(
        factories.CustomerFactory(merchant=merchant, email="ada@example.com"), points=200
    )
    staff_create(username="support-c", role="support", password=PASSWORD)
    return customer


@pytest.fixture
def support_page(page, customer):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "support-c")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.goto(f"/admin/accounts/customer/{customer.pk}/change/")
    page.click("text=Adjust points")
    page.wait_for_selector("#correction-preview")
    return page


def points_of(customer) -> int:
    customer.refresh_from_db()
    return customer.points


def test_yes_after_changing_the_previewed_amount_applies_nothing_and_asks_for_a_new_preview(
    support_page, customer, screenshot
):
    page = support_page
    # No preview yet: nothing to confirm.
    assert page.locator("#confirm-correction").count() == 0
    page.fill("#id_amount", "-999999")
    page.click("#preview-correction")  # no reason needed to preview
    page.wait_for_selector("#correction-summary")
    assert "Refused" in page.inner_text("#correction-preview")
    screenshot("correction-preview-refused")

    page.fill("#id_amount", "250")  # changed after the preview, then "Yes" without a new one
    page.fill("#id_reason", REASON)
    page.click("#confirm-correction")
    page.wait_for_selector(".errors #id_amount")

    assert points_of(customer) == 200
    assert not PointTransaction.objects.filter(kind="adjust").exists()
    amount_row = page.locator(".form-row", has=page.locator("#id_amount"))
    assert "changed after the preview" in amount_row.locator(".errorlist").inner_text()
    assert "450 points" in page.inner_text("#correction-preview")  # previewed again, for 250
    assert "Preview of an amount of +250" in page.inner_text("#correction-summary")
    screenshot("correction-stale-amount")

    page.click("#confirm-correction")  # now it is what the page shows
    page.wait_for_selector(".messagelist")
    assert points_of(customer) == 450
    assert "Adjusted the points of ada@example.com: 200 points → 450 points." in page.inner_text(
        ".messagelist"
    )


def test_preview_then_yes_applies_the_previewed_amount(support_page, customer, screenshot):
    page = support_page
    page.fill("#id_amount", "-50")
    page.press("#id_amount", "Enter")  # Enter previews: it is the form's first button
    page.wait_for_selector("#confirm-correction")
    assert "150 points" in page.inner_text("#correction-preview")
    assert points_of(customer) == 200
    page.fill("#id_reason", REASON)
    screenshot("correction-preview-ok")

    page.click("#confirm-correction")
    page.wait_for_selector(".messagelist")

    assert points_of(customer) == 150
    assert page.url.endswith(f"/admin/accounts/customer/{customer.pk}/change/")
    screenshot("correction-applied")
    page.goto("/admin/")
    assert "ada@example.com" in page.inner_text("#recent-actions-module")
    screenshot("correction-recent-actions")


def test_a_deduction_reverted_from_its_page_says_so_and_offers_no_second_revert(
    support_page, customer, screenshot
):
    from partners.services import partner_create
    from tests.admin.utils import deduct

    partner, _ = partner_create(
        actor=None, channel="command", name="Browser partner", merchants=[customer.merchant]
    )
    deduction = deduct(partner, customer, 30, "redeem-browser-2")
    page = support_page
    page.goto(f"/admin/ledger/pointtransaction/{deduction.pk}/change/")
    page.click("text=Revert this deduction")
    page.wait_for_selector("#confirm-correction")
    page.fill("#id_reason", "Charged twice by the partner")
    page.click("#confirm-correction")
    page.wait_for_selector(".messagelist")

    revert = PointTransaction.objects.get(reverts=deduction)
    field = page.locator(".field-reverted_by_link .readonly")
    assert field.inner_text().startswith(f"Reverted by #{revert.pk} on ")
    assert field.inner_text().endswith("UTC by support-c: Charged twice by the partner")
    assert page.locator("a.backoffice-action").count() == 0
    screenshot("correction-reverted-deduction-page")
    field.locator("a").click()
    assert f"Reverts #{deduction.pk}, a deduction of 30 points" in page.inner_text(
        ".field-reverted_by_link"
    )
    assert page.locator("a.backoffice-action").count() == 0
