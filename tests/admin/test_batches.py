"""Correction batches in the admin: upload per role, refused files, the preview's pages and
filters, apply by the creator once, the progress endpoint and the report."""

from __future__ import annotations

import csv
import io
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Customer
from ledger import approvals, batches
from ledger.models import ApprovalPolicy, CorrectionBatch, CorrectionBatchRow
from ledger.roles import staff_create
from loyalty.audit import Channel
from tests import factories
from tests.admin.conftest import login
from tests.admin.utils import messages_of
from tests.helpers import fund

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/ledger/correctionbatch/"
ADD = CHANGELIST + "add/"
REASON = "import of the 3rd went wrong"


def page_of(batch) -> str:
    return f"{CHANGELIST}{batch.pk}/change/"


def csv_file(*lines: str, name: str = "fix.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ("\r\n".join(lines) + "\r\n").encode(), "text/csv")


@pytest.fixture
def people(merchant, store):
    alice = fund(
        factories.CustomerFactory(merchant=merchant, member_id="M-1", email="alice@example.com"),
        balance=100,
        points=100,
        store=store,
    )
    bob = fund(
        factories.CustomerFactory(merchant=merchant, member_id="M-2"), points=50, store=store
    )
    return {"alice": alice, "bob": bob}


@pytest.fixture
def supervisor(db):
    user, _ = staff_create(username="supervisor-a", role="supervisor", password="pw-for-tests-1")
    return user


@pytest.fixture
def support2(db):
    user, _ = staff_create(username="support-2", role="support", password="pw-for-tests-1")
    return user


GOOD = ("kind,target,amount,reason", "adjust_points,M-1,5,", "adjust_points,M-404,5,",
        "adjust_balance,alice@example.com,-10,typo")  # fmt: skip


def upload(client, merchant, *lines, reason=REASON):
    return client.post(
        ADD, {"merchant": merchant.pk, "reason": reason, "file": csv_file(*(lines or GOOD))}
    )


def drain() -> None:
    while batches.run_due():
        pass


@pytest.mark.parametrize("role", ["support", "supervisor", "superuser"])
def test_support_supervisor_and_superusers_upload_and_see_the_preview(
    role, request, merchant, people
):
    user = request.getfixturevalue(role)
    client = login(user)
    assert client.get(ADD).status_code == 200
    response = upload(client, merchant)
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = CorrectionBatch.objects.get()
    assert response["Location"] == page_of(batch)
    assert (batch.created_by, batch.channel, batch.total, batch.ready, batch.invalid) == (
        user, "admin", 3, 2, 1
    )  # fmt: skip
    page = client.get(page_of(batch))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<span id="count-total">3</span>' in html
    assert '<span id="count-ready">2</span>' in html
    assert '<span id="count-invalid">1</span>' in html
    assert "no such customer in this merchant" in html
    assert 'id="apply-batch"' in html
    # Nothing moved.
    assert Customer.objects.get(pk=people["alice"].pk).points == 100


def test_auditor_reads_batches_but_uploads_and_applies_nothing(auditor, support, merchant, people):
    upload(login(support), merchant)
    batch = CorrectionBatch.objects.get()
    client = login(auditor)
    assert client.get(CHANGELIST).status_code == 200
    assert "Add correction batch" not in client.get(CHANGELIST).content.decode()
    assert client.get(ADD).status_code == 403
    assert upload(client, merchant).status_code == 403
    page = client.get(page_of(batch)).content.decode()
    assert "no such customer" in page
    assert 'id="apply-batch"' not in page
    assert client.post(f"{CHANGELIST}{batch.pk}/apply/").status_code == 403
    assert client.get(f"{CHANGELIST}{batch.pk}/progress.json").status_code == 200
    assert client.get(f"{CHANGELIST}{batch.pk}/report.csv").status_code == 200
    assert CorrectionBatch.objects.get().status == "previewed"
    assert CorrectionBatch.objects.count() == 1


def test_a_user_without_a_role_sees_nothing(norole_client, support, merchant, people):
    upload(login(support), merchant)
    batch = CorrectionBatch.objects.get()
    assert norole_client.get(CHANGELIST).status_code == 403
    assert norole_client.get(ADD).status_code == 403
    assert norole_client.get(page_of(batch)).status_code == 403
    assert norole_client.get(f"{CHANGELIST}{batch.pk}/progress.json").status_code == 403


def test_no_delete_and_no_change_anywhere(superuser_client, support, merchant, people):
    upload(login(support), merchant)
    batch = CorrectionBatch.objects.get()
    assert superuser_client.get(f"{CHANGELIST}{batch.pk}/delete/").status_code == 403
    changelist = superuser_client.get(CHANGELIST).content.decode()
    assert "delete_selected" not in changelist
    # POSTing to the batch's page is not an edit: it changes nothing.
    superuser_client.post(page_of(batch), {"reason": "edited"})
    assert CorrectionBatch.objects.get().reason == REASON


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (("target,kind,colour", "M-1,adjust_points,red"), "line 1: unknown column 'colour'"),
        (("target,amount", "M-1,5"), "line 1: the first line must name the columns"),
        (("kind,target,amount",), "line 2: the file has no rows"),
        (("kind,target,amount", "adjust_points,M-1,5", "adjust_points,M-1,5,x,y"), "line 3: "),
    ],
)
def test_a_file_that_cannot_be_parsed_is_a_form_error_and_creates_nothing(
    support_client, merchant, people, lines, expected
):
    response = upload(support_client, merchant, *lines)
    assert response.status_code == 400
    html = unescape(response.content.decode())
    assert expected in html
    assert 'class="errorlist' in html
    assert not CorrectionBatch.objects.exists()
    assert not CorrectionBatchRow.objects.exists()


def test_a_file_not_in_utf8_names_its_line(support_client, merchant, people):
    data = b"kind,target,amount\r\nadjust_points,M-1,5\r\nadjust_points,M-\xe9,5\r\n"
    response = support_client.post(
        ADD,
        {"merchant": merchant.pk, "reason": REASON, "file": SimpleUploadedFile("x.csv", data)},
    )
    assert response.status_code == 400
    assert "line 3: not UTF-8" in response.content.decode()
    assert not CorrectionBatch.objects.exists()


def test_missing_fields_are_form_errors(support_client, merchant):
    response = support_client.post(ADD, {"merchant": merchant.pk, "reason": "x"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "This field is required." in html
    assert "at least 3 characters" in html
    assert not CorrectionBatch.objects.exists()


def test_the_preview_is_paginated_and_filtered(support_client, merchant, people, monkeypatch):
    monkeypatch.setattr("ledger.admin.batches.ROWS_PER_PAGE", 10)
    lines = ["kind,target,amount"]
    for n in range(25):
        lines.append(f"adjust_points,{'M-1' if n % 5 else 'nobody'},1")
    upload(support_client, merchant, *lines)
    batch = CorrectionBatch.objects.get()
    assert (batch.total, batch.ready, batch.invalid) == (25, 20, 5)

    def lines_on(url):
        html = support_client.get(url).content.decode()
        return [int(part.split('"', 1)[0]) for part in html.split('data-line="')[1:]], html

    first, html = lines_on(page_of(batch))
    assert first == list(range(2, 12))
    assert "Page 1 of 3 (25 rows)" in html
    third, html = lines_on(page_of(batch) + "?p=3")
    assert third == list(range(22, 27))
    assert 'id="rows-next"' not in html
    invalid, html = lines_on(page_of(batch) + "?status=invalid")
    assert invalid == [2, 7, 12, 17, 22]
    assert html.count("no such customer") == 5
    ready, html = lines_on(page_of(batch) + "?status=ready&p=2")
    assert "Page 2 of 2 (20 rows)" in html
    assert len(ready) == 10 and 7 not in ready
    # The cumulative preview: each ready row of M-1 adds one point on the last.
    rows = list(batches.report_rows(batch, "ready")[:2])
    assert [(r.before, r.after) for r in rows] == [(100, 101), (101, 102)]
    # A junk status or page falls back, never a 500.
    assert support_client.get(page_of(batch) + "?status=nope&p=x").status_code == 200


def test_only_the_creator_or_a_superuser_applies(support, support2, superuser, merchant, people):
    upload(login(support), merchant)
    batch = CorrectionBatch.objects.get()
    other = login(support2)
    assert 'id="apply-batch"' not in other.get(page_of(batch)).content.decode()
    assert "Only support-1 (or a superuser)" in other.get(page_of(batch)).content.decode()
    assert other.post(f"{CHANGELIST}{batch.pk}/apply/").status_code == 403
    assert CorrectionBatch.objects.get().status == "previewed"
    root = login(superuser)
    assert 'id="apply-batch"' in root.get(page_of(batch)).content.decode()
    response = root.post(f"{CHANGELIST}{batch.pk}/apply/", follow=True)
    assert "Applying 2 ready rows" in " ".join(messages_of(response))
    assert CorrectionBatch.objects.get().status == "applying"


def test_one_row_reads_in_the_singular(support_client, merchant, people):
    response = support_client.post(
        ADD,
        {"merchant": merchant.pk, "reason": REASON,
         "file": csv_file("kind,target,amount,reason", "adjust_points,M-1,5,")},
        follow=True,
    )  # fmt: skip
    assert "Previewed 1 row: 1 ready, 0 invalid." in " ".join(messages_of(response))
    batch = CorrectionBatch.objects.get()
    html = unescape(support_client.get(page_of(batch)).content.decode())
    assert 'value="Apply 1 ready row"' in html and "ready rows" not in html
    assert "Page 1 of 1 (1 row)" in html
    assert f"Correction batch #{batch.pk} of 1 row at" in html
    changelist = unescape(support_client.get(CHANGELIST).content.decode())
    assert "1 row: 1 ready, 0 invalid" in changelist
    response = support_client.post(f"{CHANGELIST}{batch.pk}/apply/", follow=True)
    assert "Applying 1 ready row: the worker" in " ".join(messages_of(response))


def test_apply_twice_is_refused_and_applies_once(support_client, merchant, people):
    upload(support_client, merchant)
    batch = CorrectionBatch.objects.get()
    apply_url = f"{CHANGELIST}{batch.pk}/apply/"
    assert support_client.get(apply_url).status_code == 405
    first = support_client.post(apply_url)
    assert first.status_code == 302 and first["Location"] == page_of(batch)
    second = support_client.post(apply_url, follow=True)
    assert "already been applied" in " ".join(messages_of(second))
    drain()
    batch.refresh_from_db()
    assert (batch.status, batch.applied, batch.refused) == ("completed", 2, 0)
    alice = Customer.objects.get(pk=people["alice"].pk)
    assert (alice.points, alice.balance) == (105, 90)
    third = support_client.post(apply_url, follow=True)
    assert "already been applied" in " ".join(messages_of(third))
    assert Customer.objects.get(pk=people["alice"].pk).points == 105


def test_a_held_batch_links_its_approval_request(support_client, merchant, people):
    approvals.setting_save(
        ApprovalPolicy(), actor=None, channel=Channel.COMMAND, merchant=merchant, kind="batch",
        threshold=1,
    )  # fmt: skip
    upload(support_client, merchant)
    batch = CorrectionBatch.objects.get()
    response = support_client.post(f"{CHANGELIST}{batch.pk}/apply/", follow=True)
    batch.refresh_from_db()
    assert batch.status == "pending_approval" and batch.approval_id
    message = " ".join(messages_of(response))
    assert f"approval request #{batch.approval_id}" in message
    html = response.content.decode()
    assert 'id="batch-held"' in html
    assert 'id="apply-batch"' not in html
    assert Customer.objects.get(pk=people["alice"].pk).points == 100


def test_the_progress_endpoint_counts_while_applying(support_client, merchant, people, settings):
    settings.BATCH_CHUNK = 1
    settings.BATCH_STEP_SECONDS = 0  # one chunk per worker step, so the count is seen midway
    upload(support_client, merchant)
    batch = CorrectionBatch.objects.get()
    url = f"{CHANGELIST}{batch.pk}/progress.json"
    data = support_client.get(url).json()
    assert (data["status"], data["total"], data["ready"], data["invalid"], data["done"]) == (
        "previewed", 3, 2, 1, 0
    )  # fmt: skip
    support_client.post(f"{CHANGELIST}{batch.pk}/apply/")
    page = support_client.get(page_of(batch)).content.decode()
    assert "<progress" in page and 'id="batch-progress-bar"' in page
    assert "nonce=" in page.split('id="batch-progress-bar"', 1)[1]  # the polling script
    batches.run_due()
    data = support_client.get(url).json()
    assert (data["status"], data["applied"], data["refused"], data["done"]) == (
        "applying", 1, 0, 1
    )  # fmt: skip
    drain()
    response = support_client.get(url)
    assert "no-store" in response["Cache-Control"]
    data = response.json()
    assert (data["status"], data["applied"], data["done"]) == ("completed", 2, 2)
    page = support_client.get(page_of(batch)).content.decode()
    assert "2 applied, 0 refused" in page
    assert support_client.get(f"{CHANGELIST}999999/progress.json").status_code == 404


def test_the_report_downloads_as_csv(support_client, merchant, people):
    upload(support_client, merchant)
    batch = CorrectionBatch.objects.get()
    support_client.post(f"{CHANGELIST}{batch.pk}/apply/")
    drain()
    response = support_client.get(f"{CHANGELIST}{batch.pk}/report.csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="correction-batch-{batch.pk}.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(batches.REPORT_COLUMNS)
    assert [r[:5] for r in rows[1:]] == [
        ["2", "adjust_points", "M-1", "5", "applied"],
        ["3", "adjust_points", "M-404", "5", "invalid"],
        ["4", "adjust_balance", "alice@example.com", "-10", "applied"],
    ]


def test_batches_are_reachable_from_the_audit_log(auditor, support, merchant, people):
    client = login(support)
    upload(client, merchant)
    batch = CorrectionBatch.objects.get()
    client.post(f"{CHANGELIST}{batch.pk}/apply/")
    drain()
    html = login(auditor).get("/admin/audit-log/?model=correctionbatch").content.decode()
    assert f'href="{page_of(batch)}"' in html
    # The rows' ledger changes name their batch and line, linked to the row.
    html = login(auditor).get("/admin/audit-log/?model=customer").content.decode()
    assert f'href="{page_of(batch)}?line=2"' in html
    row_page = login(auditor).get(page_of(batch) + "?line=2").content.decode()
    assert row_page.count('data-line="') == 1
    history = login(auditor).get(f"{CHANGELIST}{batch.pk}/history/")
    assert history.status_code == 200


def test_a_held_batch_approved_applies_and_rejected_cannot_be_applied(
    support_client, supervisor, merchant, people
):
    approvals.setting_save(
        ApprovalPolicy(), actor=None, channel=Channel.COMMAND, merchant=merchant, kind="batch",
        threshold=1,
    )  # fmt: skip
    for decide in (approvals.approve, approvals.reject):
        upload(support_client, merchant)
        batch = CorrectionBatch.objects.first()  # the newest
        support_client.post(f"{CHANGELIST}{batch.pk}/apply/")
        batch.refresh_from_db()
        decide(batch.approval, actor=supervisor, channel=Channel.ADMIN, reason="checked the file")
        html = support_client.get(page_of(batch)).content.decode()
        assert 'id="apply-batch"' not in html
        if decide is approvals.approve:
            assert 'id="batch-progress-bar"' in html
            drain()
            assert "2 applied, 0 refused" in support_client.get(page_of(batch)).content.decode()
        else:
            assert 'id="batch-rejected"' in html
            again = support_client.post(f"{CHANGELIST}{batch.pk}/apply/", follow=True)
            assert "upload it again as a new batch" in " ".join(messages_of(again))
    alice = Customer.objects.get(pk=people["alice"].pk)
    assert (alice.points, alice.balance) == (105, 90)  # the approved batch only
