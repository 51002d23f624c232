"""Every endpoint and action against every kind of caller: exact status, and refused calls
change nothing."""

import pytest

from tests.api.conftest import StaffClient, ledger_snapshot, token_for

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "norole", "partner", "auditor", "support", "superuser"]
READ = {"anonymous": 401, "norole": 403, "partner": 403, "auditor": 200}
READ |= {"support": 200, "superuser": 200}

RESOURCES = {
    "merchants": "merchant",
    "stores": "store",
    "stamp-cards": "card",
    "customers": "customer",
    "stamps": "stamp",
    "balance-updates": "credit",
    "point-transactions": "deduction",
    "partners": "partner",
}


def read_endpoints(world):
    for resource, key in RESOURCES.items():
        yield f"{resource}/"
        yield f"{resource}/{world[key].pk}/"
        yield f"{resource}/{world[key].pk}/history/"
    yield "audit-log/"
    yield "audit-log/?format=csv"


@pytest.mark.parametrize("role", ROLES)
def test_reads(role, world, client_for):
    api = client_for(role)
    for path in read_endpoints(world):
        response = api.get(path)
        assert response.status_code == READ[role], (role, path, response.status_code)
        if response.status_code != 200:
            assert response.json()["code"] in {"not_authenticated", "permission_denied"}


def write_calls(world):
    m, customer = world["merchant"], world["customer"]
    return [
        ("POST", "stamp-cards/", {"merchant": m.pk, "name": "New", "max_stamps": 5}, 201),
        ("POST", "customers/", {"merchant": m.pk, "email": "new@example.com"}, 201),
        ("PATCH", f"customers/{customer.pk}/", {"name": "Renamed"}, 200),
        ("POST", f"stamps/{world['stamp'].pk}/deduct/", {"reason": "double scan"}, 200),
        ("POST", f"balance-updates/{world['credit'].pk}/cancel/", {"reason": "wrong"}, 200),
        ("POST", f"point-transactions/{world['deduction'].pk}/revert/", {"reason": "fail"}, 200),
        ("POST", f"customers/{customer.pk}/adjust-balance/", {"amount": 5, "reason": "gift"}, 200),
        ("POST", f"customers/{customer.pk}/adjust-points/", {"amount": -5, "reason": "fix"}, 200),
    ]


WRITE_REFUSED = {"anonymous": 401, "norole": 403, "partner": 403, "auditor": 403}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("call", range(8))
def test_writes(role, call, world, client_for):
    method, path, body, success = write_calls(world)[call]
    before = ledger_snapshot()
    response = client_for(role).call(method, path, body)
    expected = WRITE_REFUSED.get(role, success)
    assert response.status_code == expected, (role, path, response.content)
    if expected >= 400:
        assert ledger_snapshot() == before
    else:
        assert ledger_snapshot() != before


@pytest.mark.parametrize("role", ["norole", "auditor"])
def test_refused_before_looking_the_object_up(role, client_for):
    # No existence leak to callers without the permission: 403 even for unknown ids.
    api = client_for(role)
    assert api.post("stamps/999999/deduct/", {"reason": "x" * 5}).status_code == 403


def test_session_login_works_like_a_token(support, world):
    api = StaffClient()
    api.client.force_login(support)
    assert api.get("customers/").status_code == 200
    response = api.post(f"stamps/{world['stamp'].pk}/deduct/", {"reason": "via session"})
    assert response.status_code == 200


def test_session_post_without_csrf_token_is_refused(support, world):
    api = StaffClient()
    api.client = type(api.client)(enforce_csrf_checks=True)
    api.client.force_login(support)
    before = ledger_snapshot()
    response = api.post(f"stamps/{world['stamp'].pk}/deduct/", {"reason": "via session"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert ledger_snapshot() == before


def test_partner_api_key_is_not_a_staff_token(world):
    key = world["partner"].credentials.api_key
    response = StaffClient(key).get("customers/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_anonymous_gets_www_authenticate(client_for):
    response = client_for("anonymous").get("customers/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
        "fields": {},
    }


def test_inactive_user_token_is_refused(support, world):
    key = token_for(support)
    support.is_active = False
    support.save(update_fields=["is_active"])
    assert StaffClient(key).get("customers/").status_code == 401
