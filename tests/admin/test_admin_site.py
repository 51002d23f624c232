"""The admin as a support agent's tool: branding, the root, the favicon, 403 pages in the
admin's layout that name the missing permission, links only to pages the user may open, and
quiet logs and checks."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from ledger import services
from ledger.admin.base import admin_link, may_view
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel
from loyalty.db import CoveringIndex
from tests import factories
from tests.helpers import fund

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_the_root_redirects_to_the_admin_which_is_branded_and_has_an_icon(client, auditor_client):
    assert client.get("/").headers["Location"] == "/admin/"
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 302 and favicon.headers["Location"].endswith(".svg")

    html = auditor_client.get("/admin/").content.decode()

    assert "<title>Site administration | Loyalty back office</title>" in html or (
        "Loyalty back office</title>" in html
    )
    assert ">Loyalty back office</a>" in html
    assert 'rel="icon"' in html and "backoffice/favicon.svg" in html
    assert "View site" not in html  # there is no public site behind it (and "/" is here)
    assert (ROOT / "ledger/static/backoffice/favicon.svg").read_text().startswith("<svg")


def test_a_403_under_the_admin_is_an_admin_page_naming_the_missing_permission(
    auditor_client, support, stamp
):
    response = auditor_client.get(
        f"/admin/auth/user/{support.pk}/change/", HTTP_REFERER="http://testserver/admin/"
    )

    assert response.status_code == 403
    html = response.content.decode()
    assert ">Loyalty back office</a>" in html and 'id="nav-sidebar"' in html
    assert "Can view user" in html and "<code>auth.view_user</code>" in html
    assert 'id="denied-back" ' in html or 'href="http://testserver/admin/"' in html
    assert 'id="denied-home"' in html

    correction = auditor_client.get(f"/admin/ledger/stamp/{stamp.pk}/correction/deduct_stamp/")
    assert correction.status_code == 403
    assert "<code>ledger.remove_stamp</code>" in correction.content.decode()


def test_a_403_of_the_audit_log_names_every_history_permission_missing(norole_client):
    html = norole_client.get("/admin/audit-log/").content.decode()

    assert "<code>ledger.view_historicalbalanceupdate</code>" in html
    assert "<code>accounts.view_historicalcustomer</code>" in html


def test_a_403_outside_the_admin_keeps_its_own_shape(auditor_client, customer):
    response = auditor_client.post(
        f"/api/v1/customers/{customer.pk}/adjust-balance/",
        {"amount": 5, "reason": "test"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_links_go_only_to_pages_the_user_may_open(support_client, superuser_client, support, rf):
    customer = fund(factories.CustomerFactory(), balance=100)
    update = BalanceUpdate.objects.get(customer=customer)
    services.balance_update_cancel(
        actor=support, channel=Channel.ADMIN, balance_update=update, reason="wrong customer"
    )
    url = f"/admin/ledger/balanceupdate/{update.pk}/change/"
    user_page = f"/admin/auth/user/{support.pk}/change/"

    as_support = support_client.get(url).content.decode()
    as_superuser = superuser_client.get(url).content.decode()

    assert "support-1" in as_support and user_page not in as_support
    assert f'href="{user_page}"' in as_superuser
    assert f'href="/admin/accounts/customer/{customer.pk}/change/"' in as_support

    request = rf.get("/")
    request.user = support
    assert may_view(customer, request) and not may_view(support, request)
    assert admin_link(support, request=request) == "support-1"
    assert admin_link(None) == "-"
    assert "href" not in admin_link(customer)  # no request: no link to promise


def test_a_403_and_a_404_are_each_logged_once_without_a_traceback(auditor_client, support):
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect()
    logging.getLogger().addHandler(handler)
    try:
        admin_403 = auditor_client.get(f"/admin/auth/user/{support.pk}/change/")
        api_403 = auditor_client.post("/api/v1/customers/1/adjust-balance/", {})
        admin_404 = auditor_client.get("/admin/no-such-page/")
        api_404 = auditor_client.get("/api/v1/no-such-thing/")
    finally:
        logging.getLogger().removeHandler(handler)

    errors = [r for r in records if r.name == "django.request"]
    responses = [admin_403, api_403, admin_404, api_404]
    assert (
        [r.status_code for r in errors]
        == [r.status_code for r in responses]
        == [
            403,
            403,
            404,
            404,
        ]
    )
    for record, response in zip(errors, responses, strict=True):
        assert record.exc_info is None and not record.exc_text
        # Also when Django logs after the middleware returned (the API's answers).
        assert record.request_id == response.headers["X-Request-ID"]
    # Django's own console handler (which wrote each line twice) is gone; root writes once.
    for name in ("django", "django.server"):
        handlers = logging.getLogger(name).handlers
        assert all(type(h).__module__.startswith("_pytest") for h in handlers), handlers


def test_covering_indexes_keep_their_columns_on_postgresql_and_warn_nothing_on_sqlite():
    index = next(i for i in PointTransaction._meta.indexes if i.name == "pointtxn_settlement")
    assert isinstance(index, CoveringIndex)
    assert index.include == () and index.covering == ("partner", "kind", "points")
    assert index.deconstruct()[0] == "django.db.models.Index"
    assert index.deconstruct()[2]["include"] == ("partner", "kind", "points")
    if connection.vendor == "postgresql":
        with connection.schema_editor(collect_sql=True) as editor:
            sql = str(index.create_sql(PointTransaction, editor))
        assert "INCLUDE" in sql and '"partner_id"' in sql
    historical = Stamp.history.model._meta.indexes
    assert any(getattr(i, "covering", ()) for i in historical)

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DEBUG="1", DATABASE_URL="sqlite:///:memory:")
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "W040" not in checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_dashboard_bars_reasons_and_actors_link_to_the_filtered_audit_log(
    auditor_client, support, stamp
):
    services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=stamp)
    services.stamp_remove(
        actor=support, channel=Channel.ADMIN, stamp=stamp, reason="Scanned twice at the till"
    )
    today = timezone.localdate().isoformat()

    html = auditor_client.get("/admin/dashboard/").content.decode()

    assert "Each correction counted once" in html  # the heading's note says what it counts
    day = f'href="/admin/audit-log/?since={today}&amp;until={today}&amp;model=stamp"'
    reason = "q=Scanned+twice+at+the+till"
    actor = "actor=support-1"
    assert day in html and reason in html and actor in html
    for query in (f"since={today}&until={today}&model=stamp", reason, actor):
        log = auditor_client.get(f"/admin/audit-log/?{query}")
        assert log.status_code == 200, query
        assert "Scanned twice at the till" in log.content.decode(), query


def test_a_reason_longer_than_the_audit_log_filter_still_links_to_a_page_that_answers(
    auditor_client, support, stamp
):
    services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=stamp)
    services.stamp_remove(actor=support, channel=Channel.ADMIN, stamp=stamp, reason="x" * 450)

    html = auditor_client.get("/admin/dashboard/").content.decode()

    start = html.index("/admin/audit-log/?since=", html.index('id="top-reasons"'))
    url = html[start : html.index('"', start)].replace("&amp;", "&")
    assert auditor_client.get(url).status_code == 200
