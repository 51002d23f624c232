"""Idempotency-Key and corrections under real concurrency (PostgreSQL, real threads)."""

import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, connections, transaction

from ledger.models import Stamp
from loyalty import idempotency
from tests import factories
from tests.api.conftest import StaffClient, token_for
from tests.helpers import postgres_only, run_concurrently

pytestmark = [
    postgres_only,
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def support(db):
    """A staff user with the deduct permissions given directly: a transactional test's flush
    keeps permissions (post_migrate) but not the role groups of the data migration, and a
    serialized rollback would leave later transactional tests without permissions."""
    user = factories.UserFactory(username="racer")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="ledger", codename__in=["view_stamp", "remove_stamp"]
        )
    )
    return user


def test_same_key_while_the_first_request_runs_is_409(world, support):
    stamp = world["stamp"]
    held, release = threading.Event(), threading.Event()

    def hold_the_key():
        # What a first request with this key does while it runs: hold its advisory lock.
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s)", [idempotency._lock_id(support.pk, "k-1")]
                )
                held.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold_the_key)
    thread.start()
    try:
        assert held.wait(timeout=30)
        response = StaffClient(token_for(support)).post(
            f"stamps/{stamp.pk}/deduct/",
            {"reason": "double scan"},
            headers={"Idempotency-Key": "k-1"},
        )
    finally:
        release.set()
        thread.join(timeout=30)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_flight"
    assert Stamp.objects.get(pk=stamp.pk).count == 2


def test_concurrent_deducts_never_go_below_zero(world, support):
    stamp, key = world["stamp"], token_for(support)  # count 2

    def deduct(i):
        return StaffClient(key).post(f"stamps/{stamp.pk}/deduct/", {"reason": f"race {i}"})

    statuses = sorted(r.status_code for r in run_concurrently(5, deduct))
    assert statuses == [200, 200, 409, 409, 409]
    assert Stamp.objects.get(pk=stamp.pk).count == 0


def test_concurrent_repeats_with_one_key_apply_once(world, support):
    stamp, key = world["stamp"], token_for(support)

    def deduct(i):
        return StaffClient(key).post(
            f"stamps/{stamp.pk}/deduct/", {"reason": "same"}, headers={"Idempotency-Key": "once"}
        )

    statuses = {r.status_code for r in run_concurrently(4, deduct)}
    assert statuses <= {200, 409} and 200 in statuses
    assert Stamp.objects.get(pk=stamp.pk).count == 1
