import os

import pytest
from django.core import signals
from django.core.servers.basehttp import WSGIServer
from django.db import close_old_connections

from ledger.roles import staff_create
from loyalty.audit import Channel
from partners.services import partner_create
from tests import factories

# Django's live server listens with a backlog of 10; the race tests open 30 connections at once
# (granian, which serves production, has a backlog of 2048).
WSGIServer.request_queue_size = 128


def pytest_collection_modifyitems(config, items):
    # CI must prove the invariants on PostgreSQL; never let it pass on SQLite by accident.
    if os.environ.get("CI") and "postgres" not in os.environ.get("DATABASE_URL", ""):
        raise pytest.UsageError("CI runs the suite on PostgreSQL: set DATABASE_URL")


@pytest.fixture(autouse=True, scope="session")
def _plain_http_test_client():
    # The suite runs with production settings (DEBUG off) but talks plain HTTP to the test
    # client and the live server, and does not run collectstatic. Session-wide, because the
    # live server builds its middleware once, when it starts.
    from django.conf import settings

    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def _keep_test_connection():
    # Django's test Client stops requests from closing the database connection (it holds the
    # test's transaction); schemathesis' WSGI client does not, so do the same here.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def merchant(db):
    return factories.MerchantFactory()


@pytest.fixture
def store(merchant):
    return factories.StoreFactory(merchant=merchant)


@pytest.fixture
def customer(merchant):
    return factories.CustomerFactory(merchant=merchant)


@pytest.fixture
def card(merchant):
    return factories.StampCardFactory(merchant=merchant, max_stamps=10)


@pytest.fixture
def stamp(card, customer):
    return factories.StampFactory(card=card, customer=customer)


@pytest.fixture
def support(db):
    user, _ = staff_create(username="support-1", role="support", password="pw-for-tests-1")
    return user


@pytest.fixture
def auditor(db):
    user, _ = staff_create(username="auditor-1", role="auditor", password="pw-for-tests-1")
    return user


@pytest.fixture
def partner(merchant):
    partner, credentials = partner_create(
        actor=None, channel=Channel.COMMAND, name="Partner A", merchants=[merchant]
    )
    partner.credentials = credentials
    return partner
