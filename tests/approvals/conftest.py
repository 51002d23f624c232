"""Approvals fixtures: the staff API's (real tokens, real headers) plus supervisors."""

from __future__ import annotations

import pytest

from ledger.roles import staff_create
from tests.api.conftest import (  # noqa: F401  (fixtures)
    StaffClient,
    _fast_password_hashing,
    api_auditor,
    api_support,
    token_for,
    world,
)


@pytest.fixture
def supervisor(db):
    user, _ = staff_create(username="supervisor-1", role="supervisor")
    return user


@pytest.fixture
def supervisor2(db):
    user, _ = staff_create(username="supervisor-2", role="supervisor")
    return user


@pytest.fixture
def api_supervisor(supervisor) -> StaffClient:
    return StaffClient(token_for(supervisor))


@pytest.fixture
def api_supervisor2(supervisor2) -> StaffClient:
    return StaffClient(token_for(supervisor2))


@pytest.fixture
def superuser(db):
    user, _ = staff_create(username="admin-1", role="admin")
    return user


@pytest.fixture
def api_superuser(superuser) -> StaffClient:
    return StaffClient(token_for(superuser))
