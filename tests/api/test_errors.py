"""One error body for the whole staff API, whatever went wrong; never a 500."""

import pytest

from tests.api.conftest import ledger_snapshot

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code and body["message"]
    return body


def test_unparseable_json_is_400(world, api_support):
    before = ledger_snapshot()
    path = f"stamps/{world['stamp'].pk}/deduct/"
    assert_error(api_support.post(path, raw="{not json"), 400, "parse_error")
    assert_error(api_support.post(path, raw='{"reason": NaN}'), 400, "parse_error")
    assert_error(api_support.post(path, raw='["reason"]'), 400, "parse_error")
    assert_error(api_support.post(path, raw='"just a string"'), 400, "parse_error")
    assert_error(api_support.post(path, raw=b'{"reason": "\xff\xfe"}'), 400, "parse_error")
    assert_error(api_support.post(path, raw='{"reason": "\\ud800abc"}'), 400, "parse_error")
    assert_error(api_support.post(path, raw="[" * 5000), 400, "parse_error")
    assert ledger_snapshot() == before


def test_body_over_64_kib_is_413(world, api_support):
    before = ledger_snapshot()
    body = {"reason": "double scan", "padding": "x" * (64 * 1024)}
    response = api_support.post(f"stamps/{world['stamp'].pk}/deduct/", body)
    assert_error(response, 413, "body_too_large")
    assert ledger_snapshot() == before


def test_other_media_types_are_415(world, api_support):
    response = api_support.post(
        f"stamps/{world['stamp'].pk}/deduct/", raw="reason=abc", content_type="text/plain"
    )
    assert_error(response, 415, "unsupported_media_type")


def test_method_not_allowed_is_405(world, api_support):
    assert_error(
        api_support.call("DELETE", f"stamps/{world['stamp'].pk}/"), 405, "method_not_allowed"
    )
    assert_error(api_support.get(f"stamps/{world['stamp'].pk}/deduct/"), 405, "method_not_allowed")
    assert_error(api_support.post("merchants/", {"name": "x"}), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path",
    ["nothing-here/", "stamps/abc/", "stamps/99999999999999999999/", "stamps/1/x/", "stamps"],
)
def test_unknown_paths_are_404_in_the_shape(world, api_support, path):
    assert_error(api_support.get(path), 404, "not_found")


def test_not_found_object(world, api_support):
    assert_error(api_support.get("customers/424242/"), 404, "not_found")


def test_throttled_is_429_with_retry_after(world, api_support, settings):
    settings.STAFF_API_THROTTLE_RATE = "2/min"
    assert api_support.get("merchants/").status_code == 200
    assert api_support.get("merchants/").status_code == 200
    response = api_support.get("merchants/")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_throttle_counts_per_user(world, api_support, api_auditor, settings):
    settings.STAFF_API_THROTTLE_RATE = "1/min"
    assert api_support.get("merchants/").status_code == 200
    assert api_auditor.get("merchants/").status_code == 200
    assert api_support.get("merchants/").status_code == 429


def test_not_acceptable_is_406(world, api_support):
    response = api_support.get("merchants/", headers={"Accept": "text/html"})
    assert_error(response, 406, "not_acceptable")


def test_deeply_nested_audit_log_cursor_is_400_not_500(world, api_auditor):
    import base64

    cursor = base64.urlsafe_b64encode(b"[" * 3000).decode()
    assert_error(api_auditor.get("audit-log/", {"cursor": cursor}), 400, "invalid")


def test_cursor_decode_refuses_deep_nesting():
    # ledger.history.Cursor.decode let RecursionError escape (a 500 for a crafted cursor).
    import base64

    from ledger.history import Cursor

    assert Cursor.decode(base64.urlsafe_b64encode(b"[" * 100_000).decode()) is None
