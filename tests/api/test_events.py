"""The event feed (GET /api/v1/events/): permissions, input, paging with a never-null `next`,
and the visibility rule under real concurrency on PostgreSQL: a cursor never passes an event
of a transaction still in flight, and following `next` sees every event exactly once."""

from __future__ import annotations

import random
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.db import connections, transaction

from accounts.models import Customer
from ledger import errors, feed, services
from ledger.models import Event
from loyalty.audit import Channel
from tests import factories
from tests.api.conftest import StaffClient, token_for
from tests.helpers import fund, postgres_only, run_concurrently

FEED = "events/"


def test_who_may_read_the_feed(client_for, users):
    assert users["support"].has_perm("ledger.view_event")
    assert users["auditor"].has_perm("ledger.view_event")
    assert client_for("anonymous").get(FEED).status_code == 401
    assert client_for("norole").get(FEED).status_code == 403
    assert client_for("partner").get(FEED).status_code == 403
    for role in ("auditor", "support", "superuser"):
        response = client_for(role).get(FEED)
        assert response.status_code == 200, role
        assert response.json()["next"].startswith("http://testserver/api/v1/events/?after=")


@pytest.mark.parametrize(
    "params, field",
    [
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "MTIzNDU"}, "after"),  # base64 of "12345": no (txid, id) pair
        ({"type": "balance.exploded"}, "type"),
        ({"merchant": "x"}, "merchant"),
        ({"customer": "0"}, "customer"),
        ({"page_size": "500"}, "page_size"),
    ],
)
def test_bad_input_is_a_400_in_the_staff_shape(api_auditor, params, field):
    response = api_auditor.get(FEED, params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"]


def test_a_cursor_round_trips_and_rejects_garbage():
    cursor = feed.Cursor(2**40, 17)
    assert feed.Cursor.decode(cursor.encode()) == cursor
    for text in ("", "%%%", feed.Cursor(1, 1).encode() + "x", "OTk5OTk5OTk5OTk5OTk5OTk5OTkuMQ"):
        assert feed.Cursor.decode(text) is None


# --- on committed data (transactional tests) ---------------------------------------------


@pytest.fixture
def reader(db):
    """A staff user holding view_event directly: a transactional test's flush keeps
    permissions but not the role groups of the migrations."""
    user = factories.UserFactory(username="feed-reader")
    user.user_permissions.add(Permission.objects.get(codename="view_event"))
    return StaffClient(token_for(user))


def local(url: str) -> str:
    """A `next` URL as the test client takes it (path and query)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.scheme else url


def follow(client: StaffClient, url: str = FEED, params=None, *, max_pages: int = 1000):
    """Follow `next` until a page is empty; returns (events, the last `next`)."""
    seen = []
    response = client.get(local(url), params)
    for _ in range(max_pages):
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["next"]
        if not body["results"]:
            return seen, body["next"]
        seen.extend(body["results"])
        response = client.get(local(body["next"]))
    raise AssertionError("the feed did not end")


@pytest.mark.django_db(transaction=True)
@postgres_only
def test_the_feed_pages_oldest_first_and_next_polls_again(reader, merchant, store, customer):
    other = factories.CustomerFactory(merchant=merchant)
    fund(customer, balance=10, points=10, store=store)
    fund(other, points=5)
    services.balance_debit(
        actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=3
    )
    events, last_next = follow(reader, params={"page_size": 2})
    assert [e["id"] for e in events] == list(
        Event.objects.order_by("txid", "id").values_list("event_id", flat=True)
    )
    assert [e["type"] for e in events] == [
        "balance.credited",
        "points.credited",
        "points.credited",
        "balance.debited",
    ]
    first = events[0]
    assert set(first) == {
        "id",
        "type",
        "created",
        "merchant",
        "customer",
        "customer_sequence",
        "actor",
        "channel",
        "reason",
        "request_id",
        "data",
    }
    assert first["created"].endswith("Z")
    assert (first["merchant"], first["customer"], first["customer_sequence"]) == (
        merchant.pk,
        customer.pk,
        1,
    )
    assert first["actor"] == {"type": "system", "name": "system"}
    assert first["data"]["balance"] == 10
    # At the end `next` is where to poll: empty until something new commits, then just that.
    assert reader.get(local(last_next)).json()["results"] == []
    services.points_credit(actor=None, channel=Channel.COMMAND, customer=other, points=1)
    newer = reader.get(local(last_next)).json()
    assert [e["customer_sequence"] for e in newer["results"]] == [2]
    # Filters keep the same order and cursor.
    only_other, _ = follow(reader, params={"customer": other.pk})
    assert [e["customer_sequence"] for e in only_other] == [1, 2]
    debits, _ = follow(reader, params={"type": "balance.debited", "merchant": merchant.pk})
    assert [e["data"]["balance"] for e in debits] == [7]
    assert follow(reader, params={"merchant": merchant.pk + 1000})[0] == []
    page_query = parse_qs(urlsplit(newer["next"]).query)
    assert set(page_query) == {"after", "page_size"}  # the query it was asked with


@pytest.mark.django_db(transaction=True)
@postgres_only
def test_an_event_in_flight_holds_back_later_ones_until_it_commits(reader, merchant):
    first, second = (factories.CustomerFactory(merchant=merchant) for _ in range(2))
    start = follow(reader)[1]
    written, release = threading.Event(), threading.Event()
    failures = []

    def transaction_a():
        try:
            with transaction.atomic():
                services.points_credit(
                    actor=None, channel=Channel.COMMAND, customer=first, points=1
                )
                written.set()
                assert release.wait(timeout=30)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=transaction_a)
    thread.start()
    try:
        assert written.wait(timeout=30)
        # B starts after A and commits first.
        services.points_credit(actor=None, channel=Channel.COMMAND, customer=second, points=2)
        assert Event.objects.filter(customer=second).exists()  # committed and visible
        page = reader.get(local(start)).json()
        assert page["results"] == []  # B's event sorts after A's, which is not committed
        assert page["next"] == reader.get(local(start)).json()["next"]
    finally:
        release.set()
        thread.join(timeout=30)
    assert failures == []
    events, _ = follow(reader, page["next"])
    assert [e["customer"] for e in events] == [first.pk, second.pk]


@pytest.mark.django_db(transaction=True)
@postgres_only
@pytest.mark.concurrency
def test_twenty_threads_on_five_customers_gap_free_and_each_event_once(partner, store, card):
    merchant = store.merchant
    customers = [
        fund(factories.CustomerFactory(merchant=merchant), balance=50, points=50) for _ in range(5)
    ]
    stamps = [factories.StampFactory(card=card, customer=c, count=0) for c in customers]
    seen: list[str] = []
    done = threading.Event()

    def read_feed_while_writes_run():
        cursor = None
        try:
            while True:
                finished = done.is_set()
                page, cursor = feed.page(after=cursor, limit=7)
                seen.extend(e.event_id for e in page)
                if finished and not page:
                    return
        finally:
            connections.close_all()

    reader_thread = threading.Thread(target=read_feed_while_writes_run)
    reader_thread.start()

    def move(i: int) -> list[str]:
        rng = random.Random(i)
        ok = []
        for n in range(6):
            k = rng.randrange(5)
            customer, stamp = customers[k], stamps[k]
            choice = rng.randrange(4)
            try:
                if choice == 0:
                    services.balance_debit(
                        actor=partner.user,
                        channel=Channel.BALANCE_API,
                        customer=customer,
                        store=store,
                        amount=rng.randint(1, 8),
                    )
                elif choice == 1:
                    services.point_deduct(
                        actor=partner.user,
                        channel=Channel.POINTS_API,
                        partner=partner,
                        customer=customer,
                        points=rng.randint(1, 8),
                        redemption_id=f"t{i}-{n}",
                    )
                elif choice == 2:
                    services.stamp_add(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
                else:
                    services.points_credit(
                        actor=None, channel=Channel.COMMAND, customer=customer, points=3
                    )
                ok.append("ok")
            except errors.DomainError:
                pass  # a refusal (too little left, card full): no event
        return ok

    results = run_concurrently(20, move)
    done.set()
    reader_thread.join(timeout=120)
    assert not any(isinstance(r, Exception) for r in results), results
    successes = sum(len(r) for r in results)
    assert Event.objects.count() == 5 * 2 + successes
    for customer in customers:
        sequences = list(
            Event.objects.filter(customer=customer)
            .order_by("customer_sequence")
            .values_list("customer_sequence", flat=True)
        )
        assert sequences == list(range(1, len(sequences) + 1))
        assert Customer.objects.get(pk=customer.pk).event_sequence == len(sequences)
    everything = list(Event.objects.values_list("event_id", flat=True))
    assert sorted(seen) == sorted(everything)  # the reader that raced the writers
    assert len(seen) == len(set(seen))


# --- events of the staff API's corrections ---------------------------------------------------


def staff_events(customer) -> list[Event]:
    return list(
        Event.objects.filter(customer=customer, channel="staff-api").order_by("customer_sequence")
    )


def test_staff_api_corrections_emit_their_events_with_actor_and_reason(api_support, world):
    customer, stamp = world["customer"], world["stamp"]
    credit = customer.balance_updates.get(effect="credit")
    calls = [
        (f"stamps/{stamp.pk}/deduct/", {"reason": "double scan"}),
        (f"balance-updates/{credit.pk}/cancel/", {"reason": "wrong customer"}),
        (f"point-transactions/{world['deduction'].pk}/revert/", {"reason": "partner asked"}),
        (f"customers/{customer.pk}/adjust-balance/", {"amount": 5, "reason": "goodwill"}),
        (f"customers/{customer.pk}/adjust-points/", {"amount": -3, "reason": "typo fix"}),
    ]
    for path, body in calls:
        assert api_support.post(path, body).status_code == 200, path
    events = staff_events(customer)
    assert [(e.type, e.reason) for e in events] == [
        ("stamp.removed", "double scan"),
        ("balance.canceled", "wrong customer"),
        ("points.reverted", "partner asked"),
        ("balance.adjusted", "goodwill"),
        ("points.adjusted", "typo fix"),
    ]
    assert {(e.actor_type, e.actor_name) for e in events} == {("staff", "support-1")}
    assert all(e.request_id for e in events)
    canceled, reverted = events[1], events[2]
    assert canceled.data["original"]["status"] == "Success"
    assert canceled.data["balance_update"]["status"] == "Canceled"
    assert reverted.data["original"]["id"] == world["deduction"].pk
    sequences = list(
        Event.objects.filter(customer=customer)
        .order_by("customer_sequence")
        .values_list("customer_sequence", flat=True)
    )
    assert sequences == list(range(1, len(sequences) + 1))


def test_staff_api_previews_refusals_and_replays_emit_nothing(api_support, world):
    customer = world["customer"]
    before = Event.objects.count()
    path = f"customers/{customer.pk}/adjust-points/"
    preview = api_support.post(path, {"amount": 5, "reason": "peek", "preview": True})
    assert (preview.status_code, preview["Preview"]) == (200, "true")
    refused = api_support.post(path, {"amount": -(10**6), "reason": "too much"})
    assert refused.status_code == 409
    assert Event.objects.count() == before
    key = {"Idempotency-Key": "adjust-1"}
    assert api_support.post(path, {"amount": 5, "reason": "once"}, headers=key).status_code == 200
    assert api_support.post(path, {"amount": 5, "reason": "once"}, headers=key).status_code == 200
    assert Event.objects.count() == before + 1
