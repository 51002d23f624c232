import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger import history, services
from ledger.history import audit_log, export, loader
from ledger.history.versions import _diff
from ledger.models import BalanceUpdate, Stamp
from loyalty.audit import Channel
from tests import factories
from tests.helpers import fund, postgres_only
from tests.ledger import reference_csv

pytestmark = pytest.mark.django_db


def test_object_history_lists_versions_with_actor_channel_reason_and_changes(
    stamp, partner, support
):
    services.stamp_add(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    services.stamp_remove(actor=support, channel=Channel.ADMIN, stamp=stamp, reason="dup scan")
    versions = history.object_history(Stamp, stamp.pk)
    assert [(v.history_type, v.actor, v.channel, v.reason) for v in versions] == [
        ("~", "support-1", "admin", "dup scan"),
        ("~", "Partner A", "stamp-api", ""),
        ("+", "system", "command", ""),
    ]
    assert [(c.field, c.old, c.new) for c in versions[0].changes] == [("count", 1, 0)]
    assert [(c.field, c.old, c.new) for c in versions[1].changes] == [("count", 0, 1)]
    created = {c.field: c.new for c in versions[2].changes}
    assert created["count"] == 0 and created["card"] == stamp.card_id


def test_object_history_query_count_does_not_grow_with_versions(
    stamp, django_assert_max_num_queries
):
    for _ in range(30):
        services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=stamp)
        services.stamp_remove(actor=None, channel=Channel.STAMP_API, stamp=stamp)
    # The versions; then their names: the stamp with its card and customer (one join), and
    # its merchant.
    with django_assert_max_num_queries(3):
        assert len(history.object_history(Stamp, stamp.pk)) == 61


@pytest.fixture
def busy(customer, store, partner, support):
    fund(customer, balance=100, points=50, store=store)
    update = services.balance_debit(
        actor=partner.user, channel=Channel.BALANCE_API, customer=customer, store=store, amount=10
    )
    services.balance_update_cancel(
        actor=support, channel=Channel.ADMIN, balance_update=update, reason="=HYPERLINK(evil)"
    )
    return update


def test_audit_log_is_newest_first_across_models(busy, support):
    versions, cursor = history.audit_log_page(history.AuditFilters(), limit=100)
    assert cursor is None
    dates = [v.history_date for v in versions]
    assert dates == sorted(dates, reverse=True)
    assert {v.model for v in versions} >= {"customer", "balanceupdate", "merchant", "partner"}
    top = [v for v in versions if v.reason == "=HYPERLINK(evil)"]
    assert {v.model for v in top} == {"customer", "balanceupdate"}
    cancel = next(v for v in top if v.model == "balanceupdate")
    assert {c.field for c in cancel.changes} == {
        "status",
        "canceled_at",
        "canceled_by",
        "cancel_reason",
    }


@pytest.mark.parametrize(
    ("filters", "expected_models"),
    [
        ({"channel": "balance-api"}, {"customer", "balanceupdate"}),
        ({"model": "balanceupdate"}, {"balanceupdate"}),
        ({"actor": "Partner A"}, {"customer", "balanceupdate"}),
        ({"actor": "support-1"}, {"customer", "balanceupdate"}),
        ({"q": "hyperlink"}, {"customer", "balanceupdate"}),
        ({"model": "nonsense"}, set()),
    ],
)
def test_audit_log_filters(busy, filters, expected_models):
    versions, _ = history.audit_log_page(history.AuditFilters(**filters), limit=100)
    assert {v.model for v in versions} == expected_models


def test_audit_log_filters_by_merchant_and_dates(busy, customer):
    other = factories.CustomerFactory()
    fund(other, balance=5)
    mine, _ = history.audit_log_page(history.AuditFilters(merchant=customer.merchant_id), limit=500)
    assert all(v.object_id != other.pk or v.model != "customer" for v in mine)
    future = timezone.now() + dt.timedelta(days=1)
    assert history.audit_log_page(history.AuditFilters(since=future))[0] == []
    assert history.audit_log_page(history.AuditFilters(until=future), limit=500)[0]


def test_cursor_pages_cover_everything_once(busy):
    everything, _ = history.audit_log_page(history.AuditFilters(), limit=1000)
    seen, cursor = [], None
    while True:
        page, cursor = history.audit_log_page(history.AuditFilters(), limit=3, cursor=cursor)
        seen.extend((v.model, v.history_id) for v in page)
        if cursor is None:
            break
        cursor = history.Cursor.decode(cursor.encode())
    assert seen == [(v.model, v.history_id) for v in everything]


def test_audit_log_page_query_count_is_bounded(
    busy, customer, store, django_assert_max_num_queries
):
    for _ in range(40):
        services.balance_credit(
            actor=None, channel=Channel.BALANCE_API, customer=customer, store=store, amount=1
        )
    with django_assert_max_num_queries(8 + 2 * 8 + 1):
        versions, _ = history.audit_log_page(history.AuditFilters(), limit=50)
    assert len(versions) == 50


def test_csv_export_quotes_formulas(busy):
    out = io.StringIO()
    csv.writer(out).writerows(
        reference_csv.csv_rows(history.iter_audit_log(history.AuditFilters()))
    )
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == history.CSV_COLUMNS
    reasons = {r[8] for r in rows[1:]}
    assert "'=HYPERLINK(evil)" in reasons and "=HYPERLINK(evil)" not in reasons
    assert len(rows) - 1 == len(history.audit_log_page(history.AuditFilters(), limit=1000)[0])


def test_bad_cursor_decodes_to_none():
    assert history.Cursor.decode("not-a-cursor") is None
    assert history.Cursor.decode("") is None


def test_balance_update_history_names_model(busy):
    versions = history.object_history(BalanceUpdate, busy.pk)
    assert [v.history_type for v in versions] == ["~", "+"]


# --- the export against the pages ----------------------------------------------------------


@pytest.fixture
def crowded(customer, store, card, partner, support, monkeypatch):
    """Versions of every kind of object, many of them at one same instant (ties on
    history_date within a table and across tables), some with a previous version."""
    fund(customer, balance=100, points=100, store=store)
    stamp = factories.StampFactory(card=card, customer=customer)
    moment = timezone.now()
    with monkeypatch.context() as frozen:
        frozen.setattr(timezone, "now", lambda: moment)
        for _ in range(3):
            services.stamp_add(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
            services.balance_credit(
                actor=partner.user,
                channel=Channel.BALANCE_API,
                customer=customer,
                store=store,
                amount=5,
            )
    update = services.balance_debit(
        actor=partner.user, channel=Channel.BALANCE_API, customer=customer, store=store, amount=7
    )
    services.balance_update_cancel(
        actor=support, channel=Channel.ADMIN, balance_update=update, reason='+1 wrong, é "q"'
    )
    services.stamp_remove(actor=support, channel=Channel.ADMIN, stamp=stamp, reason="=1+1")
    other = factories.CustomerFactory()  # another merchant
    fund(other, points=5)
    return {"customer": customer, "stamp": stamp, "other": other}


def paged(filters: history.AuditFilters, *, limit: int) -> list[history.Version]:
    versions, cursor = [], None
    while True:
        page, cursor = history.audit_log_page(filters, limit=limit, cursor=cursor)
        versions += page
        if cursor is None:
            return versions
        cursor = history.Cursor.decode(cursor.encode())


EXPORT_FILTERS = [
    {},
    {"channel": "balance-api"},
    {"actor": "Partner A"},
    {"actor": "support-1", "q": "WRONG"},
    {"model": "customer"},
    {"model": "stamp"},
    {"merchant": "customer"},
    {"merchant": "other"},
    {"actor": "nobody"},
]


@pytest.mark.parametrize("params", EXPORT_FILTERS)
def test_export_in_small_batches_is_the_paginated_log(crowded, params):
    if params.get("merchant"):
        params = {"merchant": crowded[params["merchant"]].merchant_id}
    filters = history.AuditFilters(**params)

    exported = [v.as_dict() for v in history.iter_audit_log(filters, batch=2)]

    assert exported == [v.as_dict() for v in paged(filters, limit=3)]
    assert exported == [v.as_dict() for v in history.audit_log_page(filters, limit=1000)[0]]
    if not params:
        assert len(exported) > 10  # many batches of 2


def test_export_has_ties_across_batches_and_tables(crowded):
    exported = list(history.iter_audit_log(history.AuditFilters(), batch=2))
    dates = [v.history_date for v in exported]
    tied = {d for d in dates if dates.count(d) > 1}
    assert any(len({v.model for v in exported if v.history_date == d}) > 1 for d in tied)
    customer_ties = [
        sum(v.model == "customer" and v.history_date == d for v in exported) for d in tied
    ]
    assert max(customer_ties) > 2  # more than a batch of one table at one instant


def test_exported_versions_are_each_objects_history(crowded):
    """The export (rows as tuples, previous version by subquery) against `object_history`
    (model instances, previous version by position): same actors, reasons and changes."""
    histories = {}
    for version in history.iter_audit_log(history.AuditFilters(), batch=2):
        key = (version.model, version.object_id)
        if key not in histories:
            model = history.AUDITED_MODELS[version.model]
            histories[key] = {v.history_id: v for v in history.object_history(model, key[1])}
        assert version == histories[key][version.history_id]
    assert sum(len(versions) > 3 for versions in histories.values()) >= 2


def csv_text(versions) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(reference_csv.csv_rows(versions))
    return out.getvalue()


@pytest.mark.parametrize("params", EXPORT_FILTERS)
def test_csv_export_is_the_csv_of_the_paginated_log(crowded, params):
    if params.get("merchant"):
        params = {"merchant": crowded[params["merchant"]].merchant_id}
    filters = history.AuditFilters(**params)
    expected = csv_text(paged(filters, limit=3))

    for rows_per_chunk in (1, 3, 1000):
        chunks = list(history.audit_log_csv(filters, batch=2, rows_per_chunk=rows_per_chunk))
        assert "".join(chunks) == expected
    assert len(chunks) == 1
    if not params:
        reasons = {row[8] for row in csv.reader(io.StringIO(expected))}
        assert '\'+1 wrong, é "q"' in reasons and "'=1+1" in reasons


def test_csv_export_masks_redacted_fields_as_the_versions_do(crowded, partner):
    # One redaction policy, in the reader: the CSV written from the rows masks exactly what
    # the versions mask (a partner's credentials), and shows that they were set.
    versions = paged(history.AuditFilters(model="partner"), limit=3)
    exported = "".join(history.audit_log_csv(history.AuditFilters(model="partner"), batch=2))
    assert exported == csv_text(versions)
    assert partner.hmac_key not in exported and partner.api_key_prefix not in exported
    assert '""field"": ""hmac_key"", ""old"": null, ""new"": ""[redacted]""' in exported
    assert '""field"": ""name"", ""old"": null, ""new"": ""Partner A""' in exported


def test_csv_export_of_an_empty_log_is_the_header(crowded):
    nobody = history.AuditFilters(actor="nobody")
    assert list(history.audit_log_csv(nobody)) == [",".join(history.CSV_COLUMNS) + "\r\n"]


AWKWARD = [
    None,
    "",
    "plain",
    'é "quoted" \\ \n\t\x00 ☃ \U0001f600',
    "a,b",
    "line\r\nbreak",
    " leading space",
    True,
    False,
    0,
    -(2**70),
    1.5,
    float("nan"),
    Decimal("-0.000000000000000001"),
    dt.date(2026, 1, 2),
    dt.datetime(2026, 1, 2, 3, 4, 5, 6, dt.UTC),
    {"k": [1, None, "x"]},
    [Decimal("1.5")],
]


def test_changes_column_is_json_dumps_of_the_changes():
    labels = tuple(f'field {i} "{i}"' for i in range(len(AWKWARD)))
    heads = export._json_heads(labels)
    for new, old in [(AWKWARD, None), (AWKWARD, AWKWARD[::-1]), (AWKWARD, AWKWARD)]:
        changes = _diff(new, old, labels)
        expected = json.dumps(
            [{"field": c.field, "old": c.old, "new": c.new} for c in changes], default=str
        )
        assert export._changes_json(new, old, heads) == expected
        assert export._json_of_changes(changes, dict(zip(labels, heads, strict=True))) == expected
    redacted = frozenset(labels[:4])
    for new, old in [(AWKWARD, None), (AWKWARD, AWKWARD[::-1])]:
        changes = _diff(new, old, labels, redacted)
        masked = {c.field: (c.old, c.new) for c in changes if c.field in redacted}
        r = history.REDACTED
        # A change of a redacted field is listed; an empty value (None, "") stays empty, any
        # other one is masked.
        if old is None:
            assert masked == {labels[2]: (None, r), labels[3]: (None, r)}
        else:
            assert masked == {
                labels[0]: (r, None),
                labels[1]: (r, ""),
                labels[2]: (r, r),
                labels[3]: (r, r),
            }
        expected = json.dumps(
            [{"field": c.field, "old": c.old, "new": c.new} for c in changes], default=str
        )
        assert export._redacted_changes_json(new, old, labels, heads, redacted) == expected
        assert export._json_of_changes(changes, dict(zip(labels, heads, strict=True))) == expected


def test_csv_cells_are_what_csv_writer_writes():
    texts = [v for v in AWKWARD if isinstance(v, str)] + ['"', ",", "\r", "\n", "x\ty", "'="]
    expected = io.StringIO()
    csv.writer(expected).writerow(texts)
    assert ",".join(export._csv_cell(t) for t in texts) + "\r\n" == expected.getvalue()


@postgres_only
def test_fetch_reads_exactly_what_the_orm_reads(crowded, support):
    assert loader._native_timestamptz_loader() is not None  # psycopg's C extension is in use
    # Versions of the approvals' models too: a policy, a limit, a held correction.
    from ledger import approvals, corrections
    from ledger.models import ApprovalPolicy, StaffLimit

    staff = {"actor": support, "channel": Channel.STAFF_API}
    approvals.setting_save(
        ApprovalPolicy(), **staff, merchant=crowded["customer"].merchant, kind="adjust_points",
        threshold=1,
    )  # fmt: skip
    approvals.setting_save(StaffLimit(), **staff, user=support, kind="*", daily_count=9)
    approvals.submit(
        corrections.BY_KIND["adjust_points"], **staff, target=crowded["customer"], amount=1,
        reason="held",
    )  # fmt: skip
    # And a correction batch's.
    from ledger import batches

    batches.create_batch(
        **staff, merchant=crowded["customer"].merchant, reason="a batch",
        rows=[{"kind": "adjust_points", "target": crowded["customer"].member_id, "amount": 1}],
    )  # fmt: skip
    for model in history.AUDITED_MODELS.values():
        qs = audit_log._version_rows(model, model.history.all().order_by("-history_id"))
        fast, orm = loader._fetch(qs), list(qs)
        assert fast == orm and fast
        assert [type(v) for v in fast[0]] == [type(v) for v in orm[0]]
        assert fast[0][1].tzinfo is orm[0][1].tzinfo is dt.UTC
    nothing = audit_log._version_rows(Stamp, Stamp.history.filter(history_user_id__in=[]))
    assert loader._fetch(nothing) == []


def test_export_queries_are_per_batch_not_per_row(crowded, django_assert_max_num_queries):
    filters = history.AuditFilters(model="customer")
    total = len(history.audit_log_page(filters, limit=1000)[0])
    assert total >= 10
    # Per batch of 2: the rows, their previous versions, and the names they refer to: the
    # customers, and their merchant (a creation's foreign key).
    with django_assert_max_num_queries(4 * (total // 2 + 1)):
        assert len(list(history.iter_audit_log(filters, batch=2))) == total
    with django_assert_max_num_queries(4 * (total // 2 + 1)):
        text = "".join(history.audit_log_csv(filters, batch=2))
    assert text.count("\r\n") == total + 1
