"""Failed logins are throttled per (username, address): 30 wrong passwords in 6 s were once
followed by a successful login with the right one."""

import pytest
from django.conf import settings
from django.test import Client

from ledger.roles import staff_create

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "right-horse-battery-1"


@pytest.fixture
def root(db):
    return staff_create(username="root-1", role="admin", password=PASSWORD)[0]


@pytest.fixture
def colleague(db):
    return staff_create(username="colleague-1", role="support", password=PASSWORD)[0]


def failure_limit() -> int:
    # What the issue saw: 30 failures, then the right password logged in.
    return getattr(settings, "AXES_FAILURE_LIMIT", 30)


def attempt(username: str, password: str, client: Client | None = None, **meta):
    client = client or Client()
    response = client.post(LOGIN, {"username": username, "password": password}, **meta)
    logged_in = "_auth_user_id" in client.session
    return response, logged_in


def fail_until_locked(username: str, **meta) -> None:
    for _ in range(failure_limit()):
        response, logged_in = attempt(username, "wrong-password", **meta)
        assert not logged_in
        assert response.status_code in (200, 429)


def test_the_right_password_is_refused_after_the_failure_limit(root):
    fail_until_locked("root-1")
    response, logged_in = attempt("root-1", PASSWORD)
    assert response.status_code == 429
    assert not logged_in
    assert "Too many failed login attempts" in response.content.decode()
    assert 3 <= failure_limit() <= 10


def test_fewer_failures_do_not_lock_and_a_success_resets_the_count(root):
    for _ in range(failure_limit() - 1):
        attempt("root-1", "wrong-password")
    assert attempt("root-1", PASSWORD)[1]
    for _ in range(failure_limit() - 1):
        attempt("root-1", "wrong-password")
    assert attempt("root-1", PASSWORD)[1]


def test_a_lockout_is_per_username_and_address(root, colleague):
    fail_until_locked("root-1")
    # Another user from the same address still logs in (an office behind one NAT).
    response, logged_in = attempt("colleague-1", PASSWORD)
    assert (response.status_code, logged_in) == (302, True)
    # The same user from another address too (an attacker cannot lock the owner out).
    response, logged_in = attempt("root-1", PASSWORD, REMOTE_ADDR="10.9.8.7")
    assert (response.status_code, logged_in) == (302, True)


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(root, settings):
    settings.TRUSTED_PROXY = False
    fail_until_locked("root-1", HTTP_X_FORWARDED_FOR="203.0.113.1")
    response, logged_in = attempt("root-1", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert (response.status_code, logged_in) == (429, False)


def test_behind_a_trusted_proxy_the_address_it_appended_counts(root, settings):
    settings.TRUSTED_PROXY = True
    # The proxy appends the peer it saw; whatever the client put before it is not trusted.
    fail_until_locked("root-1", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.1")
    response, _ = attempt("root-1", PASSWORD, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.1")
    assert response.status_code == 429
    response, logged_in = attempt("root-1", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.2")
    assert (response.status_code, logged_in) == (302, True)
