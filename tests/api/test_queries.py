"""List, history and audit-log endpoints run a fixed number of queries, whatever the rows."""

import pytest

from ledger import history, services
from loyalty.audit import Channel
from partners.services import partner_create
from tests import factories
from tests.helpers import fund

pytestmark = pytest.mark.django_db

ROWS = 25


@pytest.fixture
def busy(world, support):
    merchant, store, card = world["merchant"], world["store"], world["card"]
    for i in range(ROWS):
        customer = fund(
            factories.CustomerFactory(merchant=merchant), balance=50, points=50, store=store
        )
        stamp = factories.StampFactory(card=card, customer=customer, count=1)
        services.stamp_remove(actor=support, channel=Channel.STAFF_API, stamp=stamp, reason="fix")
        update = services.balance_debit(
            actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=5
        )
        services.balance_update_cancel(
            actor=support, channel=Channel.STAFF_API, balance_update=update, reason="undo"
        )
        deduction = services.point_deduct(
            actor=world["partner"].user,
            channel=Channel.POINTS_API,
            partner=world["partner"],
            customer=customer,
            points=5,
            redemption_id=f"r-{i}",
        )
        services.point_deduction_revert(
            actor=support, channel=Channel.STAFF_API, deduction=deduction, reason="failed"
        )
        factories.StoreFactory(merchant=merchant)
        factories.StampCardFactory(merchant=merchant)
        other = factories.MerchantFactory()
        partner_create(
            actor=None, channel=Channel.COMMAND, name=f"P{i}", merchants=[merchant, other]
        )
        for _ in range(3):
            services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=world["stamp"])
            services.stamp_remove(
                actor=support, channel=Channel.STAFF_API, stamp=world["stamp"], reason="again"
            )
    return world


# Measured: token (1) + permissions (2) + throttle on the database cache (6, one with Redis)
# + the page (1, plus a COUNT for page-numbered lists, plus the merchants of partners).
LISTS = {
    "merchants/": 11,
    "stores/": 11,
    "stamp-cards/": 11,
    "partners/": 12,
    "customers/": 10,
    "stamps/": 10,
    "balance-updates/": 10,
    "point-transactions/": 10,
}


def test_query_counts_do_not_grow_with_rows(busy, api_auditor, django_assert_max_num_queries):
    """One fixture for every endpoint: building the busy ledger is the slow part."""
    measured = {}

    def count_queries(call, bound: int = 40):
        with django_assert_max_num_queries(bound) as queries:
            response = call()
            if response.streaming:
                response.content_lines = b"".join(response.streaming_content).count(b"\n")
        return response, len(queries.captured_queries)

    for path, bound in LISTS.items():
        response, measured[path] = count_queries(
            lambda p=path: api_auditor.get(p, {"page_size": 200})
        )
        assert response.status_code == 200
        assert len(response.json()["results"]) > ROWS, path
        assert measured[path] <= bound, (path, measured[path])

    path = f"stamps/{busy['stamp'].pk}/history/"
    response, measured["history"] = count_queries(lambda: api_auditor.get(path))
    assert len(response.json()) > 2 * 3 * ROWS
    assert measured["history"] <= 11 + 2  # + the names per batch: stamp (+card, customer), merchant

    # One query per audited table (n), then two per table on the page, plus the request's 9,
    # plus one per model the page names (at most the n audited ones and the users).
    n = len(history.AUDITED_MODELS)
    page_bound = 9 + n + 2 * n + n + 1
    response, measured["audit-log"] = count_queries(
        lambda: api_auditor.get("audit-log/", {"page_size": 200}), page_bound
    )
    assert len(response.json()["results"]) == 200
    following = response.json()["next"].removeprefix("http://testserver")
    response, measured["audit-log next"] = count_queries(
        lambda: api_auditor.get(following), page_bound
    )
    assert len(response.json()["results"]) == 200

    # The CSV export reads in keyset batches: a few batches, not a query per row.
    # Each batch also names its objects and foreign keys: a query per model it refers to.
    response, measured["audit-log csv"] = count_queries(
        lambda: api_auditor.get("audit-log/", {"format": "csv"}), 9 + 2 * (n + 2 * n) + 2 * n * 4
    )
    assert response.content_lines > 400
    print("query counts:", measured)
