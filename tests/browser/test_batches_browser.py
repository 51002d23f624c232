"""Support corrects many customers from a file in the admin, in headless Chromium: upload,
preview (counts, an invalid row and its error), apply, the progress bar, the report."""

from __future__ import annotations

import csv
import threading
import time

import pytest
from django.db import connection

from accounts.models import Customer
from ledger import batches
from ledger.models import CorrectionBatch
from ledger.roles import staff_create
from tests import factories
from tests.helpers import fund

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-tests"
READY = 12


@pytest.fixture
def shop(roles):
    merchant = factories.MerchantFactory(name="Batch Bakery")
    store = factories.StoreFactory(merchant=merchant)
    customers = [
        fund(
            factories.CustomerFactory(merchant=merchant, member_id=f"B-{n}"),
            points=100,
            store=store,
        )
        for n in range(READY)
    ]
    staff_create(username="support-b", role="support", password=PASSWORD)
    return {"merchant": merchant, "customers": customers}


class Worker(threading.Thread):
    """The worker's batch step in a loop, as `run_worker` runs it, until told to stop."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if not batches.run_due():
                    time.sleep(0.2)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            connection.close()


def test_support_uploads_previews_applies_and_downloads_the_report(
    page, shop, screenshot, settings, tmp_path
):
    settings.BATCH_CHUNK = 2
    settings.BATCH_PAUSE_SECONDS = 0.6  # slow enough to watch the bar move
    page.set_viewport_size({"width": 1280, "height": 800})
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    lines = ["kind,target,amount,reason"]
    lines += [f"adjust_points,B-{n},{n + 1}," for n in range(READY)]
    lines.insert(4, "adjust_points,NOBODY,5,")  # file line 5: invalid
    data = ("\n".join(lines) + "\n").encode()

    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "support-b")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    page.goto("/admin/ledger/correctionbatch/add/")
    page.select_option("#id_merchant", value=str(shop["merchant"].pk))
    page.set_input_files(
        "#id_file", files=[{"name": "points.csv", "mimeType": "text/csv", "buffer": data}]
    )
    page.fill("#id_reason", "points of the 3rd were not credited")
    screenshot("batch-upload-form")
    page.click("#upload-batch")

    page.wait_for_selector("#batch-rows")
    assert page.inner_text("#count-total") == str(READY + 1)
    assert page.inner_text("#count-ready") == str(READY)
    assert page.inner_text("#count-invalid") == "1"
    invalid = page.locator('#batch-rows tr[data-line="5"]')
    assert "invalid" in invalid.inner_text()
    assert "no such customer in this merchant" in invalid.inner_text()
    first = page.locator('#batch-rows tr[data-line="2"]').inner_text()
    assert "100" in first and "101" in first  # before and after
    screenshot("batch-preview")
    page.emulate_media(color_scheme="dark")
    screenshot("batch-preview-dark")
    page.emulate_media(color_scheme="light")

    page.click("#batch-filters a[href='?status=invalid']")
    page.wait_for_url("**?status=invalid")
    assert page.locator("#batch-rows tbody tr").count() == 1

    page.click("#apply-batch")
    page.wait_for_selector("#batch-progress-bar")
    assert "Applying 12 ready rows" in page.inner_text(".messagelist")
    worker = Worker()
    worker.start()
    try:
        # The bar moves while the worker applies (polled, without reloading the page) ...
        page.wait_for_function(
            "() => { const b = document.getElementById('batch-progress-bar');"
            " return b && b.value > 0 && b.value < b.max; }",
            timeout=20_000,
        )
        screenshot("batch-applying")
        # ... and the page shows the result once it is done: 100%.
        page.wait_for_selector("#batch-result", timeout=30_000)
    finally:
        worker.stop.set()
        worker.join(10)
    assert worker.error is None
    # The polling script ran under the CSP (its nonce), and nothing was refused.
    assert not [text for text in console if "Content Security Policy" in text], console
    bar = page.locator("#batch-progress-bar")
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(READY)
    assert "12 applied, 0 refused" in page.inner_text("#batch-result")
    assert page.inner_text("#batch-status") == "completed"
    screenshot("batch-completed")

    with page.expect_download() as download_info:
        page.click("#batch-report")
    download = download_info.value
    assert download.suggested_filename.startswith("correction-batch-")
    path = tmp_path / "report.csv"
    download.save_as(path)
    with path.open(newline="", encoding="utf-8") as report:
        rows = list(csv.DictReader(report))
    assert len(rows) == READY + 1
    assert {r["status"] for r in rows} == {"applied", "invalid"}
    bad = next(r for r in rows if r["line"] == "5")
    assert (bad["target"], bad["status"]) == ("NOBODY", "invalid")
    assert "no such customer" in bad["error"]
    good = next(r for r in rows if r["line"] == "2")
    assert (good["target"], good["before"], good["after"]) == ("B-0", "100", "101")

    # From the audit log: the batch's own history, and a customer's change naming its row.
    page.goto("/admin/audit-log/?model=customer")
    page.click("#audit-log a.help >> nth=0")
    page.wait_for_selector("#batch-rows")
    assert page.locator("#batch-rows tbody tr").count() == 1
    screenshot("batch-row-from-audit-log")

    batch = CorrectionBatch.objects.get()
    assert (batch.status, batch.applied, batch.refused) == ("completed", READY, 0)
    points = sorted(
        Customer.objects.filter(merchant=shop["merchant"]).values_list("points", flat=True)
    )
    assert points == [100 + n + 1 for n in range(READY)]
