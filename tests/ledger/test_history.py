import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from ledger import history, services
from ledger.models import BalanceUpdate, Stamp
from loyalty.audit import Channel
from tests import factories
from tests.helpers import fund

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
    with django_assert_max_num_queries(1):
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
    csv.writer(out).writerows(history.csv_rows(history.iter_audit_log(history.AuditFilters())))
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
