"""The Content-Security-Policy as Chromium enforces it: the admin and Swagger UI work under it
with no violation, and the login lockout page is what a locked-out person sees."""

import pytest
from django.conf import settings

from tests.browser import test_admin_browser as admin_browser
from tests.browser.test_admin_browser import PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
shop = admin_browser.shop  # the same small world as the admin browser tests

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


@pytest.fixture
def watched(page):
    console = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda message: console.append(message.text))

    def violations() -> list[str]:
        seen = page.evaluate("window.__csp || []")
        return seen + [text for text in console if "Content Security Policy" in text]

    page.violations = violations
    return page


def test_admin_pages_and_swagger_ui_run_without_a_policy_violation(watched, shop, screenshot):
    page = watched
    log_in(page, "support-b")
    customer = shop["customer"]
    for path in [
        "/admin/",
        "/admin/accounts/customer/",
        f"/admin/accounts/customer/{customer.pk}/change/",
        "/admin/accounts/customer/add/",
        "/admin/dashboard/",
        "/admin/audit-log/",
    ]:
        response = page.goto(path)
        assert response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert page.violations() == [], path
    response = page.goto("/api/docs/")
    assert response.status == 200
    page.wait_for_selector(".swagger-ui .info .title")  # the inline initialiser ran
    page.wait_for_selector(".opblock-tag")  # and fetched and rendered the schema
    screenshot("swagger-ui-under-csp")
    assert page.violations() == []


def test_a_locked_out_login_shows_the_lockout_page(watched, shop, screenshot):
    page = watched
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", "auditor-b")
        page.fill("#id_password", "not-the-password")
        page.click("input[type=submit]")
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "auditor-b")
    page.fill("#id_password", PASSWORD)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("input[type=submit]")
    assert answer.value.status == 429
    assert page.locator("h1").inner_text() == "Too many failed login attempts"
    screenshot("login-lockout")
    assert page.violations() == []
    log_in(page, "support-b")  # another user from the same address is not locked out
