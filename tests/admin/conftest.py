"""Fixtures for the admin tests: a logged-in client per role, and helpers to drive actions."""

import pytest
from django.test import Client

from ledger.roles import staff_create
from tests import factories


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Staff fixtures set passwords; PBKDF2's deliberate slowness is not what these tests test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser(db):
    user, _ = staff_create(username="root-1", role="admin", password="pw-for-tests-1")
    return user


@pytest.fixture
def norole(db):
    """A staff user in no role: may log in to the admin, may see and do nothing."""
    return factories.UserFactory(username="norole-1", is_staff=True)


@pytest.fixture
def support_client(support):
    return login(support)


@pytest.fixture
def auditor_client(auditor):
    return login(auditor)


@pytest.fixture
def superuser_client(superuser):
    return login(superuser)


@pytest.fixture
def norole_client(norole):
    return login(norole)
