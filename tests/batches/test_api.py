"""The staff API of correction batches: upload (CSV multipart, JSON rows), preview rows,
apply once, approvals, the report, the audit log."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Customer
from ledger import approvals, batches
from ledger.models import ApprovalPolicy, CorrectionBatch, Event
from ledger.roles import staff_create
from loyalty.audit import Channel
from tests.batches.conftest import StaffClient, csv_bytes, token_for

pytestmark = pytest.mark.django_db
URL = "/api/v1/correction-batches/"


def upload(client: StaffClient, merchant, data: bytes, reason="bulk fix of the import", **extra):
    return client.client.post(
        URL,
        {
            "file": SimpleUploadedFile("fix.csv", data, "text/csv"),
            "merchant": merchant.pk,
            "reason": reason,
            **extra,
        },
        headers=client.headers,
    )


def policy(merchant, threshold: int) -> None:
    approvals.setting_save(
        ApprovalPolicy(), actor=None, channel=Channel.COMMAND, merchant=merchant, kind="batch",
        threshold=threshold,
    )  # fmt: skip


def drain():
    while batches.run_due():
        pass


def test_upload_preview_apply_report(api_support, merchant, ledger):
    data = csv_bytes(
        "kind,target,amount,reason",
        "adjust_points,M-1,5,",
        "adjust_points,M-1,-80,",  # cumulative: 70 + 5 - 80 < 0
        "adjust_points,alice@example.com,-75,",
        "adjust_points,x@example.com,5,",
    )
    response = upload(api_support, merchant, data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("status", "merchant", "total", "ready", "invalid")} == {
        "status": "previewed",
        "merchant": merchant.pk,
        "total": 4,
        "ready": 2,
        "invalid": 2,
    }
    assert body["created_by"] == "support-1" and body["created"]
    batch_id = body["id"]

    rows = api_support.get(f"correction-batches/{batch_id}/rows/").json()["results"]
    assert [(r["line"], r["status"], r["before"], r["after"]) for r in rows] == [
        (2, "ready", 70, 75),
        (3, "invalid", None, None),
        (4, "ready", 75, 0),
        (5, "invalid", None, None),
    ]
    assert rows[1]["error"].startswith("Not enough") or "points" in rows[1]["error"]
    assert rows[3]["error"] == "target: no such customer in this merchant"
    invalid = api_support.get(f"correction-batches/{batch_id}/rows/?status=invalid").json()
    assert [r["line"] for r in invalid["results"]] == [3, 5]
    assert api_support.get(f"correction-batches/{batch_id}/rows/?status=nope").status_code == 400

    response = api_support.post(f"correction-batches/{batch_id}/apply/")
    assert response.status_code == 202, response.content
    assert response.json()["batch"]["status"] == "applying"
    assert "approval" not in response.json()
    drain()
    progress = api_support.get(f"correction-batches/{batch_id}/").json()
    counts = ("status", "total", "ready", "invalid", "applied", "refused")
    assert [progress[k] for k in counts] == ["completed", 4, 2, 2, 2, 0]
    assert Customer.objects.get(pk=ledger["alice"].pk).points == 0

    report = api_support.get(f"correction-batches/{batch_id}/rows/?format=csv")
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert lines[0] == ["line", "kind", "target", "amount", "status", "before", "after", "error"]
    assert lines[1] == ["2", "adjust_points", "M-1", "5", "applied", "70", "75", ""]
    assert lines[3] == ["4", "adjust_points", "alice@example.com", "-75", "applied", "75", "0", ""]
    assert lines[4][4] == "invalid"

    # A second apply: 409 already_applied.
    again = api_support.post(f"correction-batches/{batch_id}/apply/")
    assert (again.status_code, again.json()["code"]) == (409, "already_applied")

    # The audit log lists the batch (created, previewed, applying, completed).
    log = api_support.get("audit-log/", {"model": "correctionbatch"}).json()["results"]
    assert [v["operation"] for v in log] == [
        "batch_complete", "batch_apply", "batch_create", "batch_create",
    ]  # fmt: skip
    assert log[0]["channel"] == "system" and log[1]["actor"] == "support-1"
    history = api_support.get(f"correction-batches/{batch_id}/history/").json()
    assert len(history) == 4


def test_json_rows_and_their_line_numbers(api_support, merchant, ledger):
    response = api_support.post(
        "correction-batches/",
        {
            "merchant": merchant.pk,
            "reason": "from a script",
            "rows": [
                {"kind": "adjust_balance", "target": "M-2", "amount": "-5"},
                {"kind": "adjust_balance", "target": "M-2", "amount": 1.5},
            ],
        },
    )
    assert response.status_code == 201, response.content
    rows = api_support.get(f"correction-batches/{response.json()['id']}/rows/").json()["results"]
    assert [(r["line"], r["status"]) for r in rows] == [(1, "ready"), (2, "invalid")]
    bad = api_support.post(
        "correction-batches/",
        {"merchant": merchant.pk, "reason": "from a script", "rows": [{"kind": "x"}, 3]},
    )
    assert bad.status_code == 400 and "line 2" in bad.json()["message"], bad.json()
    assert CorrectionBatch.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"kind,target\r\nadjust_points,M-1\r\nadjust_points,\xe9t\xe9\r\n", 3),
        (b"target,amount\r\nM-1,5\r\n", 1),
        (b"kind,target,colour\r\nadjust_points,M-1,red\r\n", 1),
    ],
)
def test_unparseable_uploads_are_400_naming_the_line(api_support, merchant, ledger, data, line):
    response = upload(api_support, merchant, data)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert f"line {line}: " in response.json()["message"]
    assert not CorrectionBatch.objects.exists()


def test_more_than_100000_rows_is_refused_with_the_line(api_support, merchant, ledger):
    data = b"kind,target,amount\r\n" + b"adjust_points,M-1,1\r\n" * 100_001
    response = upload(api_support, merchant, data)
    assert response.status_code == 400, response.content
    assert "line 100002: more than 100000 rows" in response.json()["message"]
    assert not CorrectionBatch.objects.exists()


def test_uploads_up_to_20_mib_larger_is_413(api_support, merchant, ledger):
    # Over 64 KiB is fine here...
    data = b"kind,target,amount,reason\r\n" + b"adjust_points,M-1,1,%s\r\n" % (b"r" * 400) * 200
    assert len(data) > 64 * 1024
    assert upload(api_support, merchant, data).status_code == 201
    # ... over 20 MiB is not.
    big = b"kind,target\r\n" + b"x" * (20 * 1024 * 1024)
    response = upload(api_support, merchant, big)
    assert (response.status_code, response.json()["code"]) == (413, "body_too_large")


def test_only_the_creator_or_a_superuser_applies(api_support, merchant, ledger, api_superuser):
    other, _ = staff_create(username="support-2", role="support")
    created = upload(api_support, merchant, csv_bytes("kind,target,amount", "adjust_points,M-1,1"))
    batch_id = created.json()["id"]
    response = StaffClient(token_for(other)).post(f"correction-batches/{batch_id}/apply/")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert api_superuser.post(f"correction-batches/{batch_id}/apply/").status_code == 202


def test_auditors_read_but_never_upload(api_auditor, api_support, merchant, ledger):
    created = upload(api_support, merchant, csv_bytes("kind,target,amount", "adjust_points,M-1,1"))
    assert upload(api_auditor, merchant, csv_bytes("kind,target", "x,y")).status_code == 403
    batch_id = created.json()["id"]
    assert api_auditor.get(f"correction-batches/{batch_id}/").status_code == 200
    assert api_auditor.post(f"correction-batches/{batch_id}/apply/").status_code == 403


def test_a_batch_over_its_threshold_waits_for_approval(
    api_support, api_supervisor, support, merchant, ledger
):
    policy(merchant, 10)
    data = csv_bytes("kind,target,amount", "adjust_points,M-1,6", "adjust_points,M-2,-4")
    batch_id = upload(api_support, merchant, data).json()["id"]
    response = api_support.post(f"correction-batches/{batch_id}/apply/")
    assert response.status_code == 202, response.content
    approval = response.json()["approval"]
    assert (approval["kind"], approval["size"], approval["status"]) == ("batch", 10, "pending")
    assert response.json()["batch"]["status"] == "pending_approval"
    drain()
    assert Customer.objects.get(pk=ledger["alice"].pk).points == 70  # nothing moved
    again = api_support.post(f"correction-batches/{batch_id}/apply/")
    assert (again.status_code, again.json()["code"]) == (409, "already_applied")

    decided = api_supervisor.post(f"approvals/{approval['id']}/approve/", {"reason": "checked"})
    assert decided.status_code == 200, decided.content
    assert api_support.get(f"correction-batches/{batch_id}/").json()["status"] == "applying"
    drain()
    assert api_support.get(f"correction-batches/{batch_id}/").json()["status"] == "completed"
    assert Customer.objects.get(pk=ledger["alice"].pk).points == 76
    # The rows name the approver too.
    moved = Event.objects.filter(type="points.adjusted").order_by("id")
    assert [e.data["approval"]["approved_by"] for e in moved] == ["supervisor-1"] * 2
    assert {e.actor_name for e in moved} == {"support-1"}


def test_a_rejected_batch_is_rejected_and_cannot_be_applied(
    api_support, api_supervisor, merchant, ledger
):
    policy(merchant, 1)
    batch_id = upload(
        api_support, merchant, csv_bytes("kind,target,amount", "adjust_points,M-1,6")
    ).json()["id"]
    approval = api_support.post(f"correction-batches/{batch_id}/apply/").json()["approval"]
    api_supervisor.post(f"approvals/{approval['id']}/reject/", {"reason": "not today"})
    assert api_support.get(f"correction-batches/{batch_id}/").json()["status"] == "rejected"
    response = api_support.post(f"correction-batches/{batch_id}/apply/")
    assert (response.status_code, response.json()["code"]) == (409, "batch_rejected")
    drain()
    assert CorrectionBatch.objects.get(pk=batch_id).status == "rejected"  # recorded so
    assert Customer.objects.get(pk=ledger["alice"].pk).points == 70


def test_a_canceled_approval_rejects_the_batch(api_support, merchant, ledger):
    policy(merchant, 1)
    batch_id = upload(
        api_support, merchant, csv_bytes("kind,target,amount", "adjust_points,M-1,6")
    ).json()["id"]
    approval = api_support.post(f"correction-batches/{batch_id}/apply/").json()["approval"]
    assert api_support.post(f"approvals/{approval['id']}/cancel/", {}).status_code == 200
    assert api_support.get(f"correction-batches/{batch_id}/").json()["status"] == "rejected"


def test_json_rows_may_exceed_64_kib(api_support, merchant, ledger):
    rows = [{"kind": "adjust_points", "target": "M-1", "amount": 1, "reason": "r" * 300}] * 300
    response = api_support.post(
        "correction-batches/", {"merchant": merchant.pk, "reason": "big body", "rows": rows}
    )
    assert response.status_code == 201, response.content
    assert response.json()["ready"] == 300


def test_lists_and_rows_take_a_fixed_number_of_queries(
    api_support, merchant, ledger, django_assert_max_num_queries
):
    for _ in range(3):
        upload(
            api_support, merchant, csv_bytes("kind,target,amount", *["adjust_points,M-1,1"] * 20)
        )
    batch_id = CorrectionBatch.objects.order_by("id").first().pk
    with django_assert_max_num_queries(12):
        assert len(api_support.get("correction-batches/").json()["results"]) == 3
    with django_assert_max_num_queries(12):
        assert len(api_support.get(f"correction-batches/{batch_id}/rows/").json()["results"]) == 20
