"""The audit log page, its filters and cursor, the streamed CSV, and the dashboard."""

import base64
import csv
import datetime as dt
import io
import json

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger import dashboard, services
from ledger.models import BalanceUpdate, PointTransaction
from loyalty.audit import Channel
from tests import factories
from tests.admin.utils import deduct
from tests.helpers import fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def activity(customer, store, card, partner, support):
    fund(customer, balance=100, points=100, store=store)
    update = BalanceUpdate.objects.get(customer=customer)
    services.balance_update_cancel(
        actor=support, channel=Channel.ADMIN, balance_update=update, reason="=cmd|' /C calc'!A0"
    )
    stamp = factories.StampFactory(card=card, customer=customer)
    services.stamp_add(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    services.stamp_remove(actor=support, channel=Channel.ADMIN, stamp=stamp, reason="Wrong card")
    deduction = deduct(partner, customer, 30, "redeem-9")
    services.point_deduction_revert(
        actor=support, channel=Channel.ADMIN, deduction=deduction, reason="Partner double charge"
    )
    other = factories.CustomerFactory()  # another merchant
    fund(other, points=5)
    return {"stamp": stamp, "update": update, "deduction": deduction, "other": other}


def test_audit_log_lists_changes_newest_first_with_actor_channel_reason_and_diff(
    activity, auditor_client
):
    response = auditor_client.get("/admin/audit-log/")

    versions = response.context["versions"]
    dates = [v.history_date for v in versions]
    assert dates == sorted(dates, reverse=True)
    revert = next(
        v for v in versions if v.operation == "point_deduction_revert" and v.model == "customer"
    )
    assert (revert.actor, revert.channel, revert.reason) == (
        "support-1",
        "admin",
        "Partner double charge",
    )
    assert [(c.field, c.old, c.new) for c in revert.changes] == [("points", 70, 100)]
    html = response.content.decode()
    assert "Partner double charge" in html and "Partner A" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"actor": "Partner A"},
            {
                ("stamp", "stamp_add"),
                ("pointtransaction", "point_deduct"),
                ("customer", "point_deduct"),
            },
        ),
        ({"channel": "stamp-api"}, {("stamp", "stamp_add")}),
        ({"model": "stamp", "actor": "support-1"}, {("stamp", "stamp_remove")}),
        (
            {"q": "double"},
            {
                ("pointtransaction", "point_deduction_revert"),
                ("customer", "point_deduction_revert"),
            },
        ),
    ],
)
def test_audit_log_filters(activity, auditor_client, params, expected):
    response = auditor_client.get("/admin/audit-log/", params)
    assert {(v.model, v.operation) for v in response.context["versions"]} == expected


def test_audit_log_filters_by_merchant_and_date_range(activity, auditor_client):
    other = activity["other"]
    mine = auditor_client.get("/admin/audit-log/", {"merchant": other.merchant_id})
    assert {v.object_id for v in mine.context["versions"] if v.model == "customer"} == {other.pk}

    today = timezone.localdate()
    inside = auditor_client.get("/admin/audit-log/", {"since": today, "until": today})
    assert len(inside.context["versions"]) > 10
    yesterday = today - dt.timedelta(days=1)
    before = auditor_client.get("/admin/audit-log/", {"until": yesterday})
    assert before.context["versions"] == []
    bad = auditor_client.get("/admin/audit-log/", {"since": today, "until": yesterday})
    assert bad.context["form"].errors["until"] and bad.context["versions"] == []


def test_audit_log_pages_with_a_cursor_without_overlap(activity, auditor_client, monkeypatch):
    monkeypatch.setattr("ledger.admin.audit_log.AUDIT_LOG_PAGE_SIZE", 5)
    everything = []
    url = "/admin/audit-log/?channel=admin"
    while url:
        response = auditor_client.get(url)
        everything += [(v.model, v.history_id) for v in response.context["versions"]]
        nxt = response.context["next_url"]
        url = f"/admin/audit-log/{nxt}" if nxt else None
        assert "channel=admin" in (nxt or "channel=admin")
    # cancel (update, customer), remove (stamp), revert (transaction, customer)
    assert len(everything) == len(set(everything)) == 5


def test_audit_log_csv_is_streamed_filtered_and_safe_for_spreadsheets(activity, auditor_client):
    response = auditor_client.get("/admin/audit-log.csv", {"channel": "admin"})

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["history_date", "model", "object_id"]
    assert len(body) == 5 and {r[header.index("channel")] for r in body} == {"admin"}
    reasons = {r[header.index("reason")] for r in body}
    assert "'=cmd|' /C calc'!A0" in reasons  # a formula is defused


def test_audit_log_csv_reads_in_keyset_batches(activity, auditor_client, monkeypatch):
    from ledger import history

    monkeypatch.setattr(history.audit_log, "EXPORT_BATCH", 2)

    def history_reads(queries):
        return [q["sql"] for q in queries if "_historical" in q["sql"]]

    with CaptureQueriesContext(connection) as before:
        response = auditor_client.get("/admin/audit-log.csv", {"channel": "admin"})
    assert history_reads(before) == []  # nothing read before the response starts streaming
    with CaptureQueriesContext(connection) as streaming:
        body = b"".join(response.streaming_content).decode()
    assert body.count("\n") == 6  # header + 5 rows
    batches = [sql for sql in history_reads(streaming) if sql.endswith("LIMIT 2")]
    # A first batch per table, and a second one for the customer's two admin changes.
    assert len(batches) == len(history.AUDITED_MODELS) + 1


def test_audit_log_csv_rows_are_pinned(activity, auditor_client):
    revert = PointTransaction.objects.get(reverts=activity["deduction"])
    customer = activity["deduction"].customer
    response = auditor_client.get("/admin/audit-log.csv", {"q": "double charge"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_model = {row[1]: row for row in rows[1:]}
    assert len(rows) == 3 and by_model.keys() == {"customer", "pointtransaction"}
    row = by_model["customer"]
    assert row[1:3] == ["customer", str(customer.pk)]
    assert row[4:9] == [
        "~",
        "support-1",
        "admin",
        "point_deduction_revert",
        "Partner double charge",
    ]
    assert row[10] == '[{"field": "points", "old": 70, "new": 100}]'
    created = json.loads(by_model["pointtransaction"][10])
    assert {"field": "id", "old": None, "new": revert.pk} in created
    assert {"field": "reverts", "old": None, "new": activity["deduction"].pk} in created
    assert {"field": "created", "old": None, "new": revert.created.isoformat()} in created
    dates = [dt.datetime.fromisoformat(r[0]) for r in rows[1:]]
    assert dates == sorted(dates, reverse=True)


def test_dashboard_counts_corrections_by_kind_reason_actor_and_partner(activity, auditor_client):
    response = auditor_client.get("/admin/dashboard/")

    data = response.context["data"]
    today = data.days.index(timezone.localdate())
    assert data.days[-1] == timezone.localdate() and len(data.days) == 30
    assert data.per_day["balance_update_cancel"][today] == 1
    assert data.per_day["stamp_remove"][today] == 1
    assert data.per_day["point_deduction_revert"][today] == 1
    assert data.top_actors == [("support-1", 3)]
    assert dict(data.top_reasons)["Wrong card"] == 1
    assert data.settlement == [
        {
            "partner": "Partner A",
            "deducted": 30,
            "deductions": 1,
            "reverted": 30,
            "reverts": 1,
            "net": 0,
        }
    ]
    html = response.content.decode()
    assert html.count('<svg class="chart"') == 4
    assert '<script src="http' not in html and "cdn" not in html.lower()


def test_dashboard_ignores_corrections_older_than_its_window(activity):
    later = timezone.now() + dt.timedelta(days=45)
    data = dashboard.build(now=later)
    assert sum(data.totals.values()) == 0 and data.top_actors == [] and data.settlement == []


def _cursor(moment: str, model: str = "customer", history_id: int = 1) -> str:
    raw = json.dumps([moment, model, history_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


OUT_OF_RANGE = [
    # until is inclusive: its end, 10000-01-01, is past what Python's datetime holds.
    ({"since": "9999-12-31", "until": "9999-12-31"}, "until"),
    ({"until": "9999-12-31"}, "until"),
]


@pytest.mark.parametrize("path", ["/admin/audit-log/", "/admin/audit-log.csv"])
@pytest.mark.parametrize(("params", "field"), OUT_OF_RANGE)
def test_audit_log_refuses_dates_out_of_range_with_a_400_in_the_admin(
    activity, auditor_client, path, params, field
):
    response = auditor_client.get(path, params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert 'id="site-name"' in html  # the admin's layout, not a bare error page
    assert "Enter a date before 9999-12-31." in html
    assert response.context["form"].errors[field] == ["Enter a date before 9999-12-31."]


@pytest.mark.parametrize("path", ["/admin/audit-log/", "/admin/audit-log.csv"])
@pytest.mark.parametrize("offset", ["+23:59", "-17:26", "+01:00"])
def test_audit_log_refuses_a_cursor_it_did_not_issue_with_a_400(
    activity, auditor_client, path, offset
):
    # The page's cursors carry UTC instants; PostgreSQL cannot even hold a +23:59 offset.
    cursor = _cursor(f"2026-01-01T00:00:00{offset}")
    response = auditor_client.get(path, {"cursor": cursor})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="site-name"' in html and "Invalid cursor." in html
    assert response.context["versions"] == []


def test_audit_log_follows_the_cursors_it_issues(activity, auditor_client, monkeypatch):
    monkeypatch.setattr("ledger.admin.audit_log.AUDIT_LOG_PAGE_SIZE", 2)
    first = auditor_client.get("/admin/audit-log/")
    nxt = first.context["next_url"]
    second = auditor_client.get(f"/admin/audit-log/{nxt}")
    assert second.status_code == 200 and len(second.context["versions"]) == 2
