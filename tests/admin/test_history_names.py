"""The admin's history and audit log, and the staff API's, name what they show: objects by
name (linked in the admin where the user may view them), fields by verbose name, operations
by label, times with their time zone; never a credential."""

import csv
import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from ledger import history, services
from ledger.models import BalanceUpdate
from loyalty.audit import Channel
from partners.services import partner_rotate_credentials
from tests import factories
from tests.admin.utils import deduct
from tests.api.conftest import StaffClient, token_for
from tests.helpers import fund

pytestmark = pytest.mark.django_db

ADMIN = Channel.ADMIN
# What history used to show for a foreign key or an object: a model and a bare number.
BARE = re.compile(r"\b(customer|merchant|store|partner|balanceupdate|pointtransaction) #?\d+\b")


@pytest.fixture
def merchant(db):
    return factories.MerchantFactory(name="Bean Bar")


@pytest.fixture
def activity(merchant, partner, support):
    store = factories.StoreFactory(merchant=merchant, name="Main street")
    alice = factories.CustomerFactory(merchant=merchant, email="alice@example.com")
    fund(alice, balance=100, points=100, store=store)
    update = BalanceUpdate.objects.get(customer=alice)
    services.balance_update_cancel(
        actor=support, channel=ADMIN, balance_update=update, reason="wrong store"
    )
    deduction = deduct(partner, alice, 30, "redeem-9")
    services.point_deduction_revert(
        actor=support, channel=ADMIN, deduction=deduction, reason="double charge"
    )
    old = partner.credentials
    new = partner_rotate_credentials(
        actor=support, channel=ADMIN, partner=partner, reason="Rotated after a leak"
    )
    partner.refresh_from_db()
    secrets = {old.hmac_key, new.hmac_key, old.api_key, new.api_key, old.api_key[:12]}
    secrets |= {new.api_key[:12], old.hmac_secret, new.hmac_secret, partner.api_key_hash}
    return {"alice": alice, "update": update, "partner": partner, "secrets": secrets}


def _body(response) -> str:
    assert response.status_code == 200, response.status_code
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_audit_log_page_names_and_links_objects(activity, auditor):
    update = activity["update"]
    body = _body(_admin(auditor).get("/admin/audit-log/"))
    url = f"/admin/ledger/balanceupdate/{update.pk}/change/"
    assert f'<a href="{url}">Credit of 100 to alice@example.com (canceled)</a>' in body
    assert "Balance update #" in body  # the model's name and the id, under the name
    assert "Balance update canceled" in body and 'title="balance_update_cancel"' in body
    assert "Canceled by</td>" in body and "support-1" in body
    assert "Deduction of 30 points from alice@example.com" in body  # the revert's `reverts`
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", body)
    assert not BARE.search(body), BARE.search(body)
    table = body[
        body.index('id="audit-log"') : body.index("</table>", body.index('id="audit-log"'))
    ]
    assert "balanceupdate" not in re.sub(r'(href|title)="[^"]*"', "", table)


def test_the_audit_log_links_only_what_the_user_may_view(activity):
    user = get_user_model().objects.create_user("history-only", is_staff=True)
    codenames = [p.split(".", 1)[1] for p in history.HISTORY_PERMISSIONS]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    body = _body(_admin(user).get("/admin/audit-log/"))
    assert "Credit of 100 to alice@example.com (canceled)" in body  # named
    assert "/change/" not in body  # but not linked: it may not view balance updates


def test_the_audit_log_model_filter_offers_verbose_names(activity, auditor):
    body = _body(_admin(auditor).get("/admin/audit-log/"))
    assert '<option value="balanceupdate">Balance update</option>' in body
    assert '<option value="pointtransaction">Point transaction</option>' in body


def test_the_object_history_page_names_values_and_shows_the_time_zone(activity, auditor):
    update = activity["update"]
    body = _body(_admin(auditor).get(f"/admin/ledger/balanceupdate/{update.pk}/history/"))
    assert "History: Credit of 100 to alice@example.com (canceled)" in body
    for text in ["Canceled by", "support-1", "Customer", "alice@example.com", "Main street"]:
        assert text in body, text
    assert "Bean Bar" in body and "Balance credited" in body
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", body)
    assert not BARE.search(body), BARE.search(body)


def test_the_staff_api_adds_names_beside_the_ids(activity, auditor):
    api = StaffClient(token_for(auditor))
    update = activity["update"]
    versions = api.get(f"balance-updates/{update.pk}/history/").json()
    canceled, created = versions[0], versions[-1]
    assert canceled["object_id"] == update.pk and canceled["model"] == "balanceupdate"
    assert canceled["object_label"] == "Credit of 100 to alice@example.com (canceled)"
    assert canceled["model_name"] == "Balance update"
    assert canceled["operation_label"] == "Balance update canceled"
    changes = {c["field"]: c for c in canceled["changes"]}
    update.refresh_from_db()
    assert changes["canceled_by"]["new"] == update.canceled_by_id  # the id stays
    assert changes["canceled_by"]["new_label"] == "support-1"
    assert changes["canceled_by"]["field_label"] == "Canceled by"
    assert changes["canceled_at"]["new_label"].endswith(" UTC")
    made = {c["field"]: c for c in created["changes"]}
    assert made["customer"]["new_label"] == "alice@example.com"
    paged = api.get(f"balance-updates/{update.pk}/history/", {"limit": 1}).json()
    assert paged[0]["object_label"] == canceled["object_label"]

    page = api.get("audit-log/", {"model": "pointtransaction"}).json()["results"]
    reverts = [c for v in page for c in v["changes"] if c["field"] == "reverts" and c["new"]]
    assert reverts[0]["new_label"] == "Deduction of 30 points from alice@example.com"
    assert all(v["history_date"].endswith(("Z", "+00:00")) for v in page)


def test_the_csv_exports_add_named_columns(activity, auditor):
    api = StaffClient(token_for(auditor))
    for body in [
        _body(api.get("audit-log/", {"format": "csv"})),
        _body(_admin(auditor).get("/admin/audit-log.csv")),
    ]:
        rows = list(csv.DictReader(io.StringIO(body)))
        assert list(rows[0]) == history.CSV_COLUMNS
        assert history.CSV_COLUMNS[:11] == [
            "history_date", "model", "object_id", "history_id", "history_type", "actor",
            "channel", "operation", "reason", "request_id", "changes",
        ]  # fmt: skip
        cancel = next(r for r in rows if r["operation"] == "balance_update_cancel")
        assert cancel["object_label"] == "Credit of 100 to alice@example.com (canceled)"
        assert cancel["model_name"] == "Balance update"
        assert cancel["operation_label"] == "Balance update canceled"
        assert "Canceled by: ∅ → support-1" in cancel["changes_text"]
        assert cancel["history_date"].endswith("+00:00")


def test_no_surface_shows_a_credential_in_any_name_or_label(activity, auditor):
    partner, secrets = activity["partner"], activity["secrets"]
    api = StaffClient(token_for(auditor))
    admin = _admin(auditor)
    pages = {
        "admin audit log": admin.get("/admin/audit-log/", {"model": "partner"}),
        "admin audit log CSV": admin.get("/admin/audit-log.csv", {"model": "partner"}),
        "admin object history": admin.get(f"/admin/partners/partner/{partner.pk}/history/"),
        "staff API history": api.get(f"partners/{partner.pk}/history/"),
        "staff API history page": api.get(f"partners/{partner.pk}/history/", {"limit": 5}),
        "staff API audit log": api.get("audit-log/", {"model": "partner"}),
        "staff API audit log CSV": api.get("audit-log/", {"model": "partner", "format": "csv"}),
    }
    for name, response in pages.items():
        body = _body(response)
        assert "Partner A" in body and "Partner credentials rotated" in body, name
        assert history.REDACTED in body, name  # the rotation shows that they changed
        leaked = [secret for secret in secrets if secret in body]
        assert leaked == [], f"{name} shows {leaked}"
    versions = json.loads(_body(api.get(f"partners/{partner.pk}/history/")))
    for version in versions:
        for change in version["changes"]:
            if change["field"] in {"hmac_key", "api_key_prefix"}:
                assert {change["old_label"], change["new_label"]} <= {None, history.REDACTED}
