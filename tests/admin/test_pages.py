"""Admin pages: linked, searchable, big-table safe, and a bounded number of queries each."""

import pytest
from django.contrib import admin

from accounts.models import Customer, Merchant, Store
from ledger import services
from ledger.admin.base import CappedCountPaginator
from ledger.models import BalanceUpdate, PointTransaction, Stamp, StampCard
from loyalty.audit import Channel
from partners.models import Partner
from partners.services import partner_create
from tests import factories
from tests.admin.utils import changelist, deduct
from tests.helpers import fund

pytestmark = pytest.mark.django_db

ROWS = 30  # enough rows on one page that an N+1 would add dozens of queries


@pytest.fixture
def populated(merchant, store, card, support):
    """ROWS of everything, through the services, with corrections by a staff user."""
    merchants = [merchant, *factories.MerchantFactory.create_batch(ROWS - 1)]
    for m in merchants[1:]:
        factories.StoreFactory(merchant=m)
        factories.StampCardFactory(merchant=m)
    partners = [
        partner_create(
            actor=None,
            channel=Channel.COMMAND,
            name=f"Partner {i}",
            merchants=[merchant, merchants[i + 1]],
        )[0]
        for i in range(4)
    ]
    customers = []
    for i in range(ROWS):
        customer = fund(
            factories.CustomerFactory(merchant=merchant), balance=50, points=100, store=store
        )
        stamp = factories.StampFactory(card=card, customer=customer, count=2)
        services.stamp_remove(
            actor=support, channel=Channel.ADMIN, stamp=stamp, reason=f"reason {i % 3}"
        )
        deduction = deduct(partners[i % 4], customer, 10, f"redeem-{i}")
        if i % 2:
            services.point_deduction_revert(
                actor=support, channel=Channel.ADMIN, deduction=deduction, reason="double charge"
            )
            update = services.balance_debit(
                actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=5
            )
            services.balance_update_cancel(
                actor=support, channel=Channel.ADMIN, balance_update=update, reason="till error"
            )
        customers.append(customer)
    busy = factories.StampFactory(card=card, customer=customers[0])
    for _ in range(ROWS):
        services.stamp_add(actor=partners[0].user, channel=Channel.STAMP_API, stamp=busy)
        services.stamp_remove(actor=support, channel=Channel.ADMIN, stamp=busy, reason="scan")
    return {"customers": customers, "partners": partners, "busy_stamp": busy}


MODELS = [Merchant, Store, Customer, StampCard, Stamp, BalanceUpdate, PointTransaction, Partner]

# Measured with ROWS rows on the page; session, user, 2 permission queries included.
CHANGELIST_QUERIES = {
    Merchant: 6,  # + capped count, page
    Store: 7,  # + merchant filter choices
    Customer: 7,
    StampCard: 7,
    Stamp: 7,
    BalanceUpdate: 7,
    PointTransaction: 8,  # + partner filter choices
    Partner: 7,  # + merchants prefetch
}


def test_every_page_runs_a_bounded_number_of_queries(
    populated, auditor_client, support_client, django_assert_max_num_queries
):
    """Changelists, object pages, history pages, the audit log and the dashboard, with ROWS
    rows each: an N+1 anywhere would add dozens of queries."""
    for model in MODELS:
        assert model.objects.count() >= 4
        for client in (auditor_client, support_client):
            with django_assert_max_num_queries(CHANGELIST_QUERIES[model], info=model.__name__):
                response = client.get(changelist(model))
            assert response.status_code == 200
            assert len(response.context["cl"].result_list) == min(model.objects.count(), 50)

    customer = populated["customers"][1]
    partner = populated["partners"][0]
    stamp = populated["busy_stamp"]
    # Each history page also names what it shows: one query per model it refers to (the
    # object, with what its name reads, and the targets of its foreign keys).
    history_pages = {
        f"/admin/accounts/customer/{customer.pk}/history/": 6 + 2,  # customer, merchant
        f"/admin/ledger/stamp/{stamp.pk}/history/": 6 + 2,  # stamp (+card, customer), merchant
        f"/admin/partners/partner/{partner.pk}/history/": 7 + 3,  # partner, merchant, user
        # the transaction (+customer), merchant, partner
        f"/admin/ledger/pointtransaction/{PointTransaction.objects.first().pk}/history/": 6 + 3,
        # the update (+customer), merchant, store, the canceling user
        f"/admin/ledger/balanceupdate/{BalanceUpdate.objects.first().pk}/history/": 6 + 4,
        f"/admin/accounts/merchant/{customer.merchant_id}/history/": 6 + 1,
    }
    for url, queries in history_pages.items():
        with django_assert_max_num_queries(queries, info=url):
            response = auditor_client.get(url)
        assert response.status_code == 200 and response.context["versions"], url

    object_pages = {
        f"/admin/accounts/customer/{customer.pk}/change/": 12,  # latest events, pending requests
        f"/admin/partners/partner/{partner.pk}/change/": 9,
        f"/admin/ledger/stamp/{stamp.pk}/change/": 10,
    }
    for url, queries in object_pages.items():
        with django_assert_max_num_queries(queries, info=url):
            assert support_client.get(url).status_code == 200, url

    # The audit log: one indexed query per audited table (11 with the approvals' three), two
    # per table on the page, and one per model the page names (at most the 11 audited models
    # and the users).
    for url, rows in [("/admin/audit-log/", 50), ("/admin/audit-log/?channel=admin&q=scan", ROWS)]:
        with django_assert_max_num_queries(18 + 12, info=url):
            response = auditor_client.get(url)
        assert len(response.context["versions"]) == rows
    with django_assert_max_num_queries(12, info="dashboard"):  # + approvals per step
        response = auditor_client.get("/admin/dashboard/")
    assert response.status_code == 200
    assert response.context["total"] == ROWS + ROWS // 2 * 2 + ROWS  # removals, reverts, cancels


def test_history_page_shows_each_version_with_actor_channel_reason_and_diff(
    populated, auditor_client
):
    stamp = populated["busy_stamp"]

    response = auditor_client.get(f"/admin/ledger/stamp/{stamp.pk}/history/")

    versions = response.context["versions"]
    assert len(versions) == 50  # a page; the rest behind "Older versions"
    latest, before = versions[0], versions[1]
    assert (latest.actor, latest.channel, latest.reason, latest.operation) == (
        "support-1",
        "admin",
        "scan",
        "stamp_remove",
    )
    assert (before.actor, before.channel, before.reason) == ("Partner 0", "stamp-api", "")
    assert [(c.field, c.old, c.new) for c in latest.changes] == [("count", 1, 0)]
    html = response.content.decode()
    assert "Partner 0" in html and "stamp-api" in html and "scan" in html
    older = auditor_client.get(
        f"/admin/ledger/stamp/{stamp.pk}/history/{response.context['next_url']}"
    )
    rest = older.context["versions"]
    assert len(rest) == 2 * ROWS + 1 - 50 and rest[-1].history_type == "+"
    assert rest[0].history_id < versions[-1].history_id
    assert [(c.field, c.old) for c in versions[-1].changes] != []  # diffed across the page edge


def test_partner_history_masks_the_hmac_key(partner, superuser_client, auditor_client):
    superuser_client.post(
        f"/admin/partners/partner/{partner.pk}/rotate-credentials/",
        {"post": "yes", "reason": "key leaked in a log"},
    )
    partner.refresh_from_db()

    response = auditor_client.get(f"/admin/partners/partner/{partner.pk}/history/")

    rotation = response.context["versions"][0]
    assert rotation.reason == "key leaked in a log" and rotation.actor == "root-1"
    assert {c.field for c in rotation.changes} >= {"hmac_key", "api_key_prefix"}
    assert partner.hmac_key not in response.content.decode()


# --- links, columns, search ----------------------------------------------------------------


def test_customer_page_shows_and_links_its_stamps_updates_and_transactions(
    populated, auditor_client
):
    customer = populated["customers"][1]
    stamp = Stamp.objects.filter(customer=customer).first()
    update = BalanceUpdate.objects.filter(customer=customer).first()
    txn = PointTransaction.objects.filter(customer=customer).first()

    html = auditor_client.get(f"/admin/accounts/customer/{customer.pk}/change/").content.decode()

    for obj in (stamp, update, txn):
        url = f"{changelist(type(obj))}{obj.pk}/change/"
        assert f'href="{url}"' in html
    for model in (Stamp, BalanceUpdate, PointTransaction):
        filtered = f"{changelist(model)}?customer__id__exact={customer.pk}"
        assert filtered in html
        rows = auditor_client.get(filtered).context["cl"].result_list
        assert {row.customer_id for row in rows} == {customer.pk}
    assert f"/admin/accounts/customer/{customer.pk}/history/" in html


def test_changelists_show_balances_counts_status_and_merchant(populated, auditor_client):
    customer = populated["customers"][0]
    customers = auditor_client.get(changelist(Customer)).content.decode()
    assert f'<td class="field-balance">{customer.balance}</td>' in customers
    assert f'<td class="field-points">{customer.points}</td>' in customers
    stamps = auditor_client.get(changelist(Stamp)).content.decode()
    assert "1/10" in stamps and "field-state" in stamps
    updates = auditor_client.get(changelist(BalanceUpdate)).content.decode()
    update = BalanceUpdate.objects.filter(status="Canceled").first()
    assert "Canceled" in updates and f"= {update.balance_after}</span>" in updates
    # The merchant is a filter of these lists, and a column of the customers'.
    assert "field-merchant_link" in customers


def test_search_finds_rows_by_exact_identifier(populated, auditor_client):
    customer = populated["customers"][3]
    deduction = PointTransaction.objects.get(customer=customer, kind="deduct")
    searches = [
        (Customer, customer.email.upper()),
        (Customer, customer.member_id),
        (Customer, str(customer.pk)),
        (Stamp, customer.wallet_address),
        (BalanceUpdate, customer.email),
        (PointTransaction, customer.member_id),
        (PointTransaction, deduction.partner_transaction_id),
        (PointTransaction, deduction.redemption_id),
    ]
    for model, term in searches:
        response = auditor_client.get(changelist(model), {"q": term})
        rows = list(response.context["cl"].result_list)
        owners = {getattr(row, "customer_id", row.pk) for row in rows}
        assert rows and owners == {customer.pk}, (model, term)

    other = Merchant.objects.order_by("-id").first()
    response = auditor_client.get(changelist(Store), {"merchant__id__exact": other.pk})
    assert [s.merchant_id for s in response.context["cl"].result_list] == [other.pk]


# --- big-table defaults --------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.model_name)
def test_every_changelist_has_big_table_defaults(model, rf, auditor):
    model_admin = admin.site._registry[model]
    request = rf.get("/")
    request.user = auditor
    assert model_admin.show_full_result_count is False
    assert issubclass(model_admin.paginator, CappedCountPaginator)
    assert model_admin.list_select_related or model is Merchant
    assert "delete_selected" not in model_admin.get_actions(request)
    assert model_admin.has_delete_permission(request) is False
    # Sorting on indexed columns (or small tables) only, also through display methods.
    sorted_on = {
        getattr(getattr(model_admin, name, None), "admin_order_field", name)
        for name in model_admin.sortable_by
    }
    assert sorted_on <= {"id", "name", "created"}, sorted_on
    foreign_keys = [
        f.name
        for f in model._meta.fields
        if f.many_to_one and f.name in model_admin.get_fields(request)
    ]
    for name in foreign_keys:
        assert (
            name in model_admin.raw_id_fields
            or name in model_admin.autocomplete_fields
            or name in model_admin.get_readonly_fields(request, model.objects.first())
        ), name


def test_paginator_caps_the_count_and_says_more_than(
    card, customer, auditor_client, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(CappedCountPaginator, "cap", 5)
    factories.StampFactory.create_batch(8, card=card, customer=customer)

    response = auditor_client.get(changelist(Stamp), {"merchant__id__exact": card.merchant_id})

    cl = response.context["cl"]
    assert cl.paginator.is_capped and cl.result_count == 5
    assert "More than" in response.content.decode()
    small = auditor_client.get(changelist(Stamp), {"q": str(Stamp.objects.first().pk)})
    assert small.context["cl"].result_count == 1
    assert not small.context["cl"].paginator.is_capped


def test_the_default_site_is_the_back_office_site_with_every_admin_and_its_pages():
    from django.urls import reverse

    from ledger.admin.site import BackOfficeSite

    assert isinstance(admin.site, BackOfficeSite)
    assert set(MODELS) <= set(admin.site._registry)
    assert {reverse(f"admin:{name}") for name in ("audit_log", "audit_log_csv", "dashboard")} == {
        "/admin/audit-log/",
        "/admin/audit-log.csv",
        "/admin/dashboard/",
    }
