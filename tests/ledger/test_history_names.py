"""History names what it shows: objects by name (not `customer 2`), fields and models by their
verbose names, operations by label, times with their time zone; and never a credential."""

import csv
import datetime as dt
import inspect
import io
import re

import pytest
from django.utils import timezone

import accounts.services
import partners.services
from accounts.models import Customer, Merchant, Store
from ledger import approvals, batches, corrections, history, services
from ledger.corrections import CORRECTIONS
from ledger.history import names
from ledger.models import (
    ApprovalPolicy,
    BalanceUpdate,
    PointTransaction,
    StaffLimit,
    Stamp,
    StampCard,
)
from ledger.roles import staff_create
from loyalty.audit import Channel
from partners.models import Partner
from partners.services import partner_rotate_credentials
from tests import factories
from tests.admin.utils import deduct
from tests.helpers import fund

pytestmark = pytest.mark.django_db

ADMIN = Channel.ADMIN


@pytest.fixture
def merchant(db):
    return factories.MerchantFactory(name="Bean Bar")


@pytest.fixture
def store(merchant):
    return factories.StoreFactory(merchant=merchant, name="Main street")


@pytest.fixture
def alice(merchant):
    return factories.CustomerFactory(merchant=merchant, email="alice@example.com")


# --- __str__ ---------------------------------------------------------------------------------


def test_objects_are_named_for_a_person(merchant, store, alice, support):
    assert (str(merchant), str(store)) == ("Bean Bar", "Main street")
    assert str(alice) == "alice@example.com"
    assert str(Customer(pk=5, member_id="M-7", wallet_address="0xab")) == "M-7"
    assert str(Customer(pk=5, wallet_address="0xab", name="Al")) == "0xab"
    assert str(Customer(pk=5, name="Al")) == "Al"
    assert str(Customer(pk=5)) == "Customer #5"

    credit = services.balance_credit(
        actor=None, channel=ADMIN, customer=alice, store=store, amount=500
    )
    debit = services.balance_debit(
        actor=None, channel=ADMIN, customer=alice, store=store, amount=200
    )
    services.balance_update_cancel(
        actor=support, channel=ADMIN, balance_update=debit, reason="wrong"
    )
    debit.refresh_from_db()
    assert str(credit) == "Credit of 500 to alice@example.com"
    assert str(debit) == "Debit of 200 from alice@example.com (canceled)"

    card = factories.StampCardFactory(merchant=merchant, name="Coffee card", max_stamps=10)
    stamp = factories.StampFactory(card=card, customer=alice, count=3)
    assert str(stamp) == "Coffee card of alice@example.com, 3/10"


def test_point_transactions_are_named_by_kind_points_and_customer(alice, partner, support):
    fund(alice, points=100)
    credit = PointTransaction.objects.get(customer=alice)
    deduction = deduct(partner, alice, 30, "r-1")
    revert = services.point_deduction_revert(
        actor=support, channel=ADMIN, deduction=deduction, reason="double charge"
    )
    adjust = services.points_adjust(
        actor=support, channel=ADMIN, customer=alice, amount=-20, reason="goodwill fix"
    )
    assert str(credit) == "Credit of 100 points to alice@example.com"
    assert str(deduction) == "Deduction of 30 points from alice@example.com"
    assert str(revert) == "Revert of 30 points to alice@example.com"
    assert str(adjust) == "Adjustment of -20 points for alice@example.com"
    assert str(partner) == "Partner A"


# --- names in history ------------------------------------------------------------------------


def _changes(version) -> dict:
    return {c.field: (c.field_label, c.old_label, c.new_label) for c in version.changes}


def test_object_history_names_foreign_keys_fields_model_and_operation(alice, store, support):
    update = services.balance_credit(
        actor=None, channel=ADMIN, customer=alice, store=store, amount=500
    )
    services.balance_update_cancel(
        actor=support, channel=ADMIN, balance_update=update, reason="wrong amount"
    )
    canceled, created = history.object_history(BalanceUpdate, update.pk)
    assert canceled.model_name == "Balance update"
    assert canceled.object_label == "Credit of 500 to alice@example.com (canceled)"
    assert canceled.operation == "balance_update_cancel"
    assert canceled.operation_label == "Balance update canceled"  # the registry's label
    assert created.operation_label == "Balance credited"
    changes = _changes(canceled)
    assert changes["canceled_by"] == ("Canceled by", None, "support-1")
    assert changes["status"] == ("Status", "Success", "Canceled")
    _label, old, new = changes["canceled_at"]
    assert old is None and new.endswith(" UTC") and re.fullmatch(r"[\d-]+ [\d:]+ UTC", new)
    made = _changes(created)
    assert made["customer"] == ("Customer", None, "alice@example.com")
    assert made["merchant"][2] == "Bean Bar"
    assert made["store"][2] == "Main street"
    assert made["effect"][2] == "Credit"
    # The raw values stay as they were (the staff API's `old`/`new`).
    assert {c.field: c.new for c in created.changes}["customer"] == alice.pk


def test_a_revert_names_the_deduction_it_reverts(alice, partner, support):
    fund(alice, points=100)
    deduction = deduct(partner, alice, 30, "r-1")
    revert = services.point_deduction_revert(
        actor=support, channel=ADMIN, deduction=deduction, reason="double charge"
    )
    (created,) = history.object_history(PointTransaction, revert.pk)
    changes = _changes(created)
    assert changes["reverts"] == (
        "Reverts",
        None,
        "Deduction of 30 points from alice@example.com",
    )
    assert created.operation_label == "Deduction reverted"
    assert _changes(history.object_history(PointTransaction, deduction.pk)[-1])["partner"][2] == (
        "Partner A"
    )


BARE_REFERENCE = re.compile(
    r"^(customer|merchant|store|stamp|stampcard|partner|user|balanceupdate|pointtransaction)"
    r" ?#?\d+$",
    re.IGNORECASE,
)


@pytest.fixture
def activity(alice, store, card, partner, support):
    fund(alice, balance=100, points=100, store=store)
    update = BalanceUpdate.objects.get(customer=alice)
    services.balance_update_cancel(
        actor=support, channel=ADMIN, balance_update=update, reason="wrong store"
    )
    stamp = factories.StampFactory(card=card, customer=alice)
    services.stamp_add(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    deduction = deduct(partner, alice, 30, "redeem-9")
    services.point_deduction_revert(
        actor=support, channel=ADMIN, deduction=deduction, reason="double charge"
    )
    partner_rotate_credentials(actor=support, channel=ADMIN, partner=partner, reason="leak")
    # Approvals: a policy, a limit, and a held adjustment approved by a second person.
    supervisor, _key = staff_create(username="supervisor-1", role="supervisor")
    approvals.setting_save(
        ApprovalPolicy(), actor=support, channel=ADMIN, reason="four eyes",
        merchant=alice.merchant, kind="adjust_points", threshold=50,
    )  # fmt: skip
    approvals.setting_save(
        StaffLimit(), actor=support, channel=ADMIN, reason="new hire",
        user=support, kind="*", daily_count=100,
    )  # fmt: skip
    held = approvals.submit(
        corrections.BY_KIND["adjust_points"], actor=support, channel=ADMIN, target=alice,
        reason="goodwill", amount=60,
    ).approval  # fmt: skip
    approvals.approve(held, actor=supervisor, channel=ADMIN, reason="checked the ticket")
    # A correction batch, uploaded and applied by the worker.
    batch = batches.create_batch(
        actor=support, channel=ADMIN, merchant=alice.merchant, reason="campaign misfire",
        rows=[{"kind": "adjust_balance", "target": alice.email, "amount": 5}],
    )  # fmt: skip
    batches.apply_batch(batch, actor=support)
    batches.run_due()
    return {"update": update, "stamp": stamp, "deduction": deduction}


def test_the_audit_log_names_every_object_and_reference(activity):
    versions, _ = history.audit_log_page(history.AuditFilters(), limit=200)
    assert {v.model for v in versions} == set(history.AUDITED_MODELS)
    for v in versions:
        model = history.AUDITED_MODELS[v.model]
        assert v.model_name == names.model_name(model)
        assert v.object_label and not BARE_REFERENCE.match(v.object_label), v
        assert v.operation_label and "_" not in v.operation_label, v
        for c in v.changes:
            assert c.field_label and "_" not in c.field_label, c
            info = names.field_infos(model)[c.field]
            if info.related is not None and c.new is not None:
                assert isinstance(c.new, int)  # the id stays, for tools
                assert c.new_label != str(c.new), (v.model, c)  # and is named
                assert not BARE_REFERENCE.match(c.new_label), c
    assert {v.model_name for v in versions} >= {"Balance update", "Point transaction", "Stamp"}


def test_the_audit_log_export_names_per_batch_like_the_pages(activity):
    """The export (streamed in keyset batches, names resolved per batch) says what the pages
    say, whatever the batch size."""
    pages, _ = history.audit_log_page(history.AuditFilters(), limit=500)
    exported = list(history.iter_audit_log(history.AuditFilters(), batch=2))
    assert [(v.object_label, v.changes) for v in exported] == [
        (v.object_label, v.changes) for v in pages
    ]
    text = "".join(history.audit_log_csv(history.AuditFilters(), batch=2))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(pages)
    assert list(rows[0])[: len(history.CSV_COLUMNS)] == history.CSV_COLUMNS
    for row, version in zip(rows, pages, strict=True):
        assert row["model"] == version.model and row["object_id"] == str(version.object_id)
        assert row["object_label"] == version.object_label
        assert row["model_name"] == version.model_name
        assert row["operation_label"] == version.operation_label
    cancel = next(r for r in rows if r["operation"] == "balance_update_cancel")
    assert cancel["operation_label"] == "Balance update canceled"
    assert "Canceled by: ∅ → support-1" in cancel["changes_text"]
    assert "Status: Success → Canceled" in cancel["changes_text"]
    # The raw columns keep their meaning: ids and codes.
    assert '"field": "canceled_by", "old": null, "new": ' in cancel["changes"]
    revert = next(
        r
        for r in rows
        if r["operation"] == "point_deduction_revert" and "Reverts" in r["changes_text"]
    )
    assert "Reverts: Deduction of 30 points from alice@example.com" in revert["changes_text"]
    # Times keep their offset.
    assert all(
        dt.datetime.fromisoformat(r["history_date"]).utcoffset() == dt.timedelta(0) for r in rows
    )


# --- operations, models, time zones -----------------------------------------------------------


def _recorded_operations(module) -> set[str]:
    source = "".join(
        inspect.getsource(m)
        for m in [module, *[v for v in vars(module).values() if inspect.ismodule(v)]]
        if m.__name__.startswith(module.__name__)
    )
    return set(re.findall(r'operation="(\w+)"', source))


def test_every_operation_services_record_has_a_label():
    recorded = set()
    for module in (services, accounts.services, partners.services):
        recorded |= _recorded_operations(module)
    recorded |= {c.operation for c in CORRECTIONS}
    recorded |= set(approvals.OPERATIONS)
    recorded |= _recorded_operations(batches)
    recorded |= {
        f"{m._meta.model_name}_{verb}"
        for m in (ApprovalPolicy, StaffLimit)
        for verb in ("save", "delete")
    }  # fmt: skip  (approvals.setting_save/delete)
    assert {"stamp_add", "point_deduct", "balance_credit", "partner_create"} <= recorded
    labelled = set(names.OPERATION_LABELS) | {c.operation for c in CORRECTIONS}
    assert recorded - labelled == set()
    assert names.operation_label("stamp_add") == "Stamp added"
    assert names.operation_label("point_deduct") == "Points deducted"
    assert names.operation_label("stamp_remove") == "Stamp removed"  # the registry's
    assert names.operation_label("something_new") == "Something new"
    assert names.operation_label("") == ""


def test_models_are_named_by_verbose_name():
    assert [names.model_name(m) for m in (BalanceUpdate, PointTransaction, StampCard)] == [
        "Balance update",
        "Point transaction",
        "Stamp card",
    ]


def test_times_carry_their_time_zone():
    moment = dt.datetime(2026, 12, 6, 14, 3, 12, 999, tzinfo=dt.UTC)
    assert names.format_instant(moment) == "2026-12-06 14:03:12 UTC"
    with timezone.override("Europe/Paris"):
        assert names.format_instant(moment) == "2026-12-06 15:03:12 CET"


# --- credentials -------------------------------------------------------------------------------

CREDENTIAL = re.compile(r"key|secret|password|digest|token|hash|encrypted|hmac", re.IGNORECASE)
# Fields whose names look like a credential but are not one (shown on purpose).
NOT_CREDENTIALS = {(PointTransaction, "txn_hash")}  # a public blockchain transaction hash


@pytest.mark.parametrize("model", list(history.AUDITED_MODELS.values()), ids=str)
def test_every_credential_field_of_every_audited_model_is_redacted(model):
    fields = names.field_infos(model)
    looking = {name for name in fields if CREDENTIAL.search(name)}
    expected = looking - {name for m, name in NOT_CREDENTIALS if m is model}
    assert expected <= history.redacted_fields(model), model
    if model is Partner:
        assert {"hmac_key", "api_key_prefix"} <= history.redacted_fields(model)


def test_a_credential_field_a_model_forgets_to_declare_is_redacted_anyway(monkeypatch):
    assert history.versions.looks_secret("webhook_secret")
    assert history.versions.looks_secret("api_key_prefix")
    assert history.versions.looks_secret("token_digest")
    assert not history.versions.looks_secret("txn_hash")
    assert not history.versions.looks_secret("wallet_address")


def test_redacted_values_are_never_named(activity, partner):
    for version in history.object_history(Partner, partner.pk):
        for change in version.changes:
            if change.field in history.redacted_fields(Partner):
                assert {change.old_label, change.new_label} <= {None, "", history.REDACTED}
    (rotation, *_) = history.object_history(Partner, partner.pk)
    assert rotation.operation_label == "Partner credentials rotated"
    assert rotation.object_label == "Partner A"


def test_names_cost_one_query_per_model_not_per_row(
    alice, store, support, django_assert_max_num_queries
):
    for _ in range(30):
        services.balance_credit(actor=support, channel=ADMIN, customer=alice, store=store, amount=1)
    filters = history.AuditFilters(model="balanceupdate")
    # 1 table + 2 for its page's changes; then the updates (with their customers), the
    # merchant, the store and the user: a query each, for 30 rows as for 1.
    with django_assert_max_num_queries(3 + 4):
        versions, _ = history.audit_log_page(filters, limit=50)
    assert len(versions) == 30
    assert {v.object_label for v in versions} == {"Credit of 1 to alice@example.com"}


def test_a_missing_object_is_named_by_model_and_id():
    found = names.Names()
    found.want(Merchant, 987654)
    assert found.resolve().of(Merchant, 987654) == "Merchant #987654"
    assert found.of(Store, 3) == "Store #3"
    assert found.of(Stamp, 3) == "Stamp #3"


def test_named_csv_cells_are_safe_for_spreadsheets(merchant):
    evil = factories.CustomerFactory(merchant=merchant, email="=1+2@example.com", member_id="")
    card = factories.StampCardFactory(merchant=merchant, name="@SUM(A1)", max_stamps=5)
    factories.StampFactory(card=card, customer=evil)
    services.points_credit(actor=None, channel=ADMIN, customer=evil, points=5)
    text = "".join(history.audit_log_csv(history.AuditFilters()))
    rows = list(csv.DictReader(io.StringIO(text)))
    labels = {r["object_label"] for r in rows}
    assert "'=1+2@example.com" in labels  # the customer
    assert "'@SUM(A1) of =1+2@example.com, 0/5" in labels  # the stamp
    assert "Credit of 5 points to =1+2@example.com" in labels
    for row in rows:
        for column in ("model_name", "object_label", "operation_label", "changes_text"):
            assert row[column][:1] not in "=+-@\t\r" or row[column] == "", (column, row)


def test_many_objects_are_named_with_their_customers_loaded_once(
    activity, monkeypatch, django_assert_max_num_queries
):
    """Past `JOIN_UP_TO` objects (an export batch), the objects a name reads (customers,
    cards) are loaded once each and attached, not joined per row: the same names."""
    expected = [(v.object_label, v.changes) for v in history.iter_audit_log(history.AuditFilters())]
    monkeypatch.setattr(names, "JOIN_UP_TO", 0)
    assert [
        (v.object_label, v.changes) for v in history.iter_audit_log(history.AuditFilters())
    ] == expected
    ids = list(PointTransaction.objects.values_list("pk", flat=True))
    found = names.Names()
    for pk in ids:
        found.want(PointTransaction, pk)
    # The transactions, then their customers (no query per transaction).
    with django_assert_max_num_queries(2):
        found.resolve()
        labels = {found.of(PointTransaction, pk) for pk in ids}
    assert "Deduction of 30 points from alice@example.com" in labels
