"""Staff API tokens are stored hashed, expire, can be revoked, and are shown once."""

import datetime as dt
import hashlib
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from tests.api.conftest import StaffClient

pytestmark = pytest.mark.django_db


def run_json(*args) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def token_rows() -> list[dict]:
    from knox.models import AuthToken

    return list(AuthToken.objects.values())


def test_a_stored_token_row_does_not_contain_the_key(support):
    key = run_json("issue_token", "support-1")["token"]
    rows = token_rows()
    assert rows, "the token is stored"
    for row in rows:
        for value in row.values():
            assert key not in str(value)
    # What is stored is a digest and a short prefix, nothing to log in with.
    assert hashlib.sha512(key.encode()).hexdigest() in {row["digest"] for row in rows}
    assert all(len(row["token_key"]) < len(key) // 2 for row in rows)
    assert StaffClient(key).get("merchants/").status_code == 200


def test_the_token_is_printed_once_and_a_new_call_prints_a_new_one(support):
    out = StringIO()
    call_command("issue_token", "support-1", stdout=out)
    first = out.getvalue()
    key = run_json("issue_token", "support-1")["token"]
    assert key not in first  # every call issues another token; none is shown again
    assert "expires" in first
    assert StaffClient(key).get("merchants/").status_code == 200


def test_create_staff_prints_a_working_token():
    created = run_json("create_staff", "sam", "--role", "auditor")
    assert StaffClient(created["token"]).get("merchants/").status_code == 200
    assert created["token_expires"]


def test_an_expired_token_is_401(support):
    from knox.models import AuthToken

    key = run_json("issue_token", "support-1")["token"]
    AuthToken.objects.update(expiry=timezone.now() - dt.timedelta(seconds=1))
    response = StaffClient(key).get("merchants/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Token"


def test_tokens_expire_after_staff_token_ttl_hours(support, settings):
    from knox.models import AuthToken

    issued = run_json("issue_token", "support-1")
    row = AuthToken.objects.get(digest=hashlib.sha512(issued["token"].encode()).hexdigest())
    expected = timezone.now() + dt.timedelta(hours=settings.STAFF_TOKEN_TTL_HOURS)
    assert abs((row.expiry - expected).total_seconds()) < 60
    assert issued["token_expires"] == row.expiry.isoformat()


def test_a_revoked_token_is_401(support):
    from knox.models import AuthToken

    key = run_json("issue_token", "support-1")["token"]
    other = run_json("issue_token", "support-1")["token"]
    count = AuthToken.objects.filter(user=support).count()  # with the fixture's own
    assert run_json("issue_token", "support-1", "--revoke") == {
        "username": "support-1",
        "revoked": count,
    }
    assert StaffClient(key).get("merchants/").status_code == 401
    assert StaffClient(other).get("merchants/").status_code == 401
    assert token_rows() == []


def test_issue_token_refuses_unknown_and_non_staff_users(partner):
    with pytest.raises(CommandError, match="no staff user"):
        run_json("issue_token", "nobody")
    with pytest.raises(CommandError, match="no staff user"):
        run_json("issue_token", partner.user.username)


def test_the_tokens_admin_page_never_shows_a_token(support, settings):
    from ledger.roles import staff_create

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    root, root_key = staff_create(username="root-1", role="admin")
    key = run_json("issue_token", "support-1")["token"]
    browser = Client()
    browser.force_login(root)
    page = browser.get("/admin/knox/authtoken/")
    assert page.status_code == 200
    html = page.content.decode()
    assert key[:8] in html and "support-1" in html  # the prefix identifies it
    assert key not in html and root_key not in html
    # (The digest is the row's primary key, so it is the revoke checkbox's value: it cannot
    # be used to log in, which is why knox stores it instead of the key.)
    assert browser.get("/admin/knox/authtoken/add/").status_code == 403
