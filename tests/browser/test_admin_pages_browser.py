"""Every admin page a role may open, in headless Chromium at 1280x800, light and dark: no
table wider than its container, every list column in view, and no serious or critical
axe-core violation.

The pages come from the admin site's registry (changelists, an object page and its history
per model, each correction's confirmation page) plus the site's own pages, so a new
ModelAdmin is covered without touching this file. One browser, one context per role (logged
in once); each page is loaded once and scanned in both colour schemes. A screenshot of every
page and scheme lands in test-results/screenshots/pages/.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import Customer
from ledger import approvals, batches, corrections, services
from ledger.admin.base import BackOfficeAdmin
from ledger.history import can_read_history
from ledger.models import ApprovalPolicy, BalanceUpdate, Event, PointTransaction, StaffLimit
from ledger.models.webhooks import WebhookDelivery
from ledger.roles import staff_create
from ledger.webhooks import services as webhook_services
from loyalty.audit import Channel
from partners.services import partner_create
from tests import factories
from tests.admin.utils import deduct
from tests.browser.conftest import LAUNCH_ARGS, SCREENSHOTS  # noqa: F401  (one browser)
from tests.helpers import fund

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-tests"
VIEWPORT = {"width": 1280, "height": 800}
LONG_REASON = (
    "Customer called support: the till scanned the card twice during the lunch rush and the "
    "second credit must go (ticket 48213, confirmed with the store manager)"
)
# What a support agent reads first on each list: what, who, how much, status, when. Each
# must be a column of the list and be in view; other columns may come and go.
KEY_COLUMNS = {
    "ledger.correctionbatch": ["id", "rows_display", "status", "created_by", "created_display"],
    "accounts.customer": ["id", "identity", "status", "balance", "points", "created_display"],
    "accounts.merchant": ["id", "name", "created_display"],
    "accounts.store": ["id", "name", "merchant_link", "created_display"],
    "ledger.stampcard": ["id", "name", "max_stamps", "created_display"],
    "ledger.stamp": [
        "id",
        "customer_link",
        "card_link",
        "count_display",
        "state",
        "created_display",
    ],
    "ledger.balanceupdate": [
        "id",
        "customer_link",
        "signed_amount_display",
        "status",
        "reason_or_cancel_reason",
        "created_display",
    ],
    "ledger.pointtransaction": [
        "id",
        "customer_link",
        "partner_link",
        "kind",
        "points_display",
        "state",
        "created_display",
    ],
    "partners.partner": ["id", "name_display", "active", "created_display"],
    "ledger.webhookendpoint": ["id", "url_display", "active", "created_display"],
    "ledger.webhookdelivery": [
        "id",
        "event_display",
        "status",
        "last_answer",
        "last_attempt_display",
    ],
}
# Picks the object each correction's confirmation page is shown for (else the newest).
CORRECTION_TARGETS = {
    "deduct_stamp": lambda qs: qs.filter(count__gt=0),
    "cancel_balance_update": lambda qs: qs.filter(status=BalanceUpdate.Status.SUCCESS),
    "revert_points": lambda qs: qs.filter(
        kind=PointTransaction.Kind.DEDUCT, reverted_by__isnull=True
    ),
}

# The scroll container of each table (the nearest ancestor that scrolls or clips, else the
# parent) must not be wider inside than out; nor the page; every list header in view.
MEASURE = r"""() => {
  const out = {tables: [], page: [document.documentElement.scrollWidth, innerWidth]};
  for (const table of document.querySelectorAll('#content table')) {
    let box = table.parentElement;
    for (let el = box; el && el !== document.body; el = el.parentElement) {
      const o = getComputedStyle(el).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') { box = el; break; }
    }
    out.tables.push({table: table.id || table.className || 'table',
                     box: box.id || box.className || box.tagName,
                     scroll: box.scrollWidth, client: box.clientWidth});
  }
  out.columns = [...document.querySelectorAll('#result_list thead th')].map(th => {
    const r = th.getBoundingClientRect();
    const cls = [...th.classList].find(c => c.startsWith('column-')) || th.className;
    return {name: cls.replace('column-', ''), left: r.left, right: r.right, width: r.width};
  });
  out.described = [...document.querySelectorAll('[aria-describedby]')].flatMap(el =>
    el.getAttribute('aria-describedby').split(/\s+/)
      .filter(id => id && !document.getElementById(id))
      .map(id => (el.id || el.name || el.tagName) + ' -> #' + id));
  return out;
}"""


@dataclass(frozen=True)
class AdminPage:
    name: str
    url: str
    kind: str  # changelist, change, history, correction, site
    model: str = ""
    status: int = 200


@pytest.fixture
def browser_settings(settings):
    # Production settings mark cookies Secure; the live server speaks plain HTTP.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture
def world(roles, browser_settings):
    return build_world()


def build_world() -> dict[str, str]:
    """Demo-like data: two merchants (so filters show), long names and reasons, every kind
    of ledger row and correction, a partner, webhook endpoints with deliveries. Returns the
    username of each role."""
    merchants = [
        factories.MerchantFactory(name="Demo Coffee"),
        factories.MerchantFactory(name="Harbourside Bakery and Roastery Cooperative"),
    ]
    support, _ = staff_create(username="support-p", role="support", password=PASSWORD)
    staff_create(username="auditor-p", role="auditor", password=PASSWORD)
    for merchant in merchants:
        store = factories.StoreFactory(merchant=merchant, name=f"{merchant.name} Airport")
        card = factories.StampCardFactory(merchant=merchant, name="Coffee card", max_stamps=10)
        partner, _ = partner_create(
            actor=None,
            channel=Channel.COMMAND,
            name=f"{merchant.name} rewards partner",
            merchants=[merchant],
        )
        for i in range(4):  # every case below at least once
            customer = fund(
                factories.CustomerFactory(
                    merchant=merchant,
                    email=f"alexandra.longname-{merchant.pk}-{i}@subsidiary.example.com",
                    name="Alexandra Konstantinopoulou-Fairweather",
                ),
                balance=1500,
                points=5000,
                store=store,
            )
            stamp = factories.StampFactory(card=card, customer=customer, count=4)
            services.stamp_remove(
                actor=support, channel=Channel.ADMIN, stamp=stamp, reason=LONG_REASON
            )
            debit = services.balance_debit(
                actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=120
            )
            if i % 2:
                services.balance_update_cancel(
                    actor=support, channel=Channel.ADMIN, balance_update=debit, reason=LONG_REASON
                )
            deduction = deduct(partner, customer, 250, f"ygg-redemption-{merchant.pk}-{i:04d}")
            if i % 3 == 0:
                services.point_deduction_revert(
                    actor=support, channel=Channel.ADMIN, deduction=deduction, reason=LONG_REASON
                )
            elif i % 3 == 1:
                services.point_deduction_confirm(
                    actor=partner.user,
                    channel=Channel.POINTS_API,
                    deduction=deduction,
                    status="reverted",
                    txn_hash="0x" + "ab" * 32,
                )
            services.points_adjust(
                actor=support, channel=Channel.ADMIN, customer=customer, amount=-75,
                reason=LONG_REASON,
            )  # fmt: skip
        endpoint, _secret = webhook_services.endpoint_create(
            merchant_id=merchant.pk,
            url=f"https://hooks.{merchant.pk}.example.com/loyalty/events/receiver/v2?tenant=demo",
            event_types=["*"],
            description="Forwards every ledger event to the CRM and the data warehouse",
        )
        now = timezone.now()
        for n, event in enumerate(Event.objects.filter(merchant=merchant).order_by("id")[:8]):
            failed = n % 3 == 0
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                event=event,
                customer_id=event.customer_id,
                customer_sequence=event.customer_sequence,
                event_type=event.type,
                status=WebhookDelivery.Status.FAILED if failed else "succeeded",
                attempts=3 if failed else 1,
                next_attempt_at=now + dt.timedelta(minutes=5),
                last_attempt_at=now,
                last_status_code=503 if failed else 200,
                last_error="HTTP 503 Service Unavailable: upstream timed out" if failed else "",
            )
    # Approvals and batches: a policy, a limit, a held adjustment, a previewed batch.
    merchant = merchants[0]
    customer = Customer.objects.filter(merchant=merchant).order_by("pk").first()
    approvals.setting_save(
        ApprovalPolicy(), actor=None, channel=Channel.COMMAND, reason="four eyes above 1000",
        merchant=merchant, kind="adjust_points", threshold=1000,
    )  # fmt: skip
    approvals.setting_save(
        StaffLimit(), actor=None, channel=Channel.COMMAND, reason="new hire",
        user=support, kind="*", max_amount=5000, daily_amount=20000, daily_count=50,
    )  # fmt: skip
    approvals.submit(
        corrections.BY_KIND["adjust_points"], actor=support, channel=Channel.ADMIN,
        target=customer, reason=LONG_REASON, amount=2500,
    )  # fmt: skip
    batches.create_batch(
        actor=support, channel=Channel.ADMIN, merchant=merchant, reason=LONG_REASON,
        rows=[
            {"kind": "adjust_points", "target": customer.email, "amount": 10},
            {"kind": "adjust_balance", "target": "nobody@example.com", "amount": 5},
        ],
    )  # fmt: skip
    return {"support": "support-p", "auditor": "auditor-p"}


def admin_pages(user) -> list[AdminPage]:
    """The pages `user` may open, from the admin site's registry and the site's own pages."""
    request = RequestFactory().get("/admin/")
    request.user = user
    pages = [AdminPage("index", reverse("admin:index"), "site")]
    if can_read_history(user):
        pages += [
            AdminPage("audit-log", reverse("admin:audit_log"), "site"),
            AdminPage("dashboard", reverse("admin:dashboard"), "site"),
        ]
    for model, model_admin in sorted(
        admin.site._registry.items(), key=lambda item: item[0]._meta.label
    ):
        opts = model._meta
        label = opts.label_lower
        if not model_admin.has_view_permission(request):
            continue
        info = f"admin:{opts.app_label}_{opts.model_name}"
        pages.append(AdminPage(label, reverse(f"{info}_changelist"), "changelist", label))
        queryset = model_admin.get_queryset(request)
        obj = queryset.order_by("-pk").first()
        if obj is None:
            continue
        pages.append(AdminPage(label, reverse(f"{info}_change", args=[obj.pk]), "change", label))
        if isinstance(model_admin, BackOfficeAdmin) and model_admin.has_history_permission(request):
            url = reverse(f"{info}_history", args=[obj.pk])
            pages.append(AdminPage(label, url, "history", label))
        for correction in getattr(model_admin, "corrections", ()):
            if not model_admin.has_correction_permission(request, correction):
                continue
            pick = CORRECTION_TARGETS.get(correction.name, lambda qs: qs)
            target = pick(queryset).order_by("-pk").first() or obj
            url = reverse(f"{info}_correction", args=[target.pk, correction.name])
            pages.append(AdminPage(f"{label}.{correction.name}", url, "correction", label))
    # A page the role may not open: the admin's 403 page.
    if not user.has_perm("auth.view_user"):
        url = reverse("admin:auth_user_change", args=[user.pk])
        pages.append(AdminPage("permission-denied", url, "site", status=403))
    return pages


def log_in(page, username: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")  # signed in (the login page has none)


def check_layout(page, admin_page: AdminPage) -> list[str]:
    problems = []
    measured = page.evaluate(MEASURE)
    scroll, width = measured["page"]
    if scroll > width:
        problems.append(f"page scrolls sideways ({scroll} > {width} px)")
    for t in measured["tables"]:
        if t["scroll"] > t["client"] + 1:
            problems.append(
                f"table {t['table']} is {t['scroll']} px wide in {t['box']} of {t['client']} px"
            )
    for dangling in measured["described"]:
        problems.append(f"aria-describedby points at no element: {dangling}")
    if admin_page.kind == "changelist" and measured["columns"]:
        results = page.locator("#changelist .results").bounding_box()
        right = min(VIEWPORT["width"], results["x"] + results["width"]) if results else 1280
        names = [c["name"] for c in measured["columns"]]
        for column in measured["columns"]:
            if column["width"] <= 0 or column["right"] > right + 1:
                problems.append(f"column {column['name']} is not in view")
        for key in KEY_COLUMNS.get(admin_page.model, []):
            if key not in names:
                problems.append(f"key column {key} missing (columns: {names})")
    return problems


SETTLED = "() => document.getAnimations().every(a => a.playState !== 'running')"
# Only colours change between the schemes: the dark scan runs the colour rules alone.
AXE_OPTIONS = {
    "light": {"resultTypes": ["violations"]},
    "dark": {
        "resultTypes": ["violations"],
        "runOnly": {"type": "rule", "values": ["color-contrast", "link-in-text-block"]},
        "performanceTimer": False,
    },
}


def axe_problems(page, scheme: str) -> list[str]:
    """Serious and critical violations of axe-core (injected in the page already)."""
    response = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS[scheme])
    return [
        f"axe {scheme} {v['id']} ({v['impact']}): "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:4])
        + (f" — {v['nodes'][0].get('failureSummary', '')[:200]}" if v["nodes"] else "")
        for v in response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("role", ["support", "auditor"])
def test_every_admin_page_fits_at_1280_and_passes_axe_in_light_and_dark(
    browser, live_server, world, role
):
    from axe_playwright_python.sync_playwright import Axe
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=world[role])
    pages = admin_pages(user)
    kinds = {p.kind for p in pages}
    assert {"site", "changelist", "change", "history"} <= kinds, kinds
    if role == "support":
        assert sum(p.kind == "correction" for p in pages) >= 5

    shots = SCREENSHOTS / "pages"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    page = context.new_page()
    axe_script = Axe().axe_script
    problems: list[str] = []
    try:
        log_in(page, world[role])
        for admin_page in pages:
            where = f"{admin_page.kind} {admin_page.name} ({admin_page.url})"
            page.emulate_media(color_scheme="light")
            response = page.goto(admin_page.url)
            if response.status != admin_page.status:
                problems.append(f"{where}: HTTP {response.status}")
                continue
            found = check_layout(page, admin_page)
            stem = f"{role}-{admin_page.kind}-{admin_page.name}".replace(".", "-")
            page.evaluate(axe_script)  # once per page, for both scans
            for scheme in ("light", "dark"):
                if scheme == "dark":
                    page.emulate_media(color_scheme=scheme)
                    # The admin's links fade their colours (0.15 s): scan once they are done.
                    page.wait_for_function(SETTLED)
                found += axe_problems(page, scheme)
                page.screenshot(path=str(shots / f"{stem}-{scheme}.png"), full_page=True)
            problems.extend(f"{where}: {problem}" for problem in found)
    finally:
        context.close()
    assert not problems, "\n".join(problems)
