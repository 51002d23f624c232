"""Stamp API (README, wire reference), through real HTTP with `Authorization: APIKey`."""

import datetime as dt

import pytest
from django.utils import timezone

from ledger import services
from ledger.models import Stamp
from loyalty.audit import Channel, audited
from tests import factories
from tests.partners.conftest import KeyClient

pytestmark = pytest.mark.django_db


def body(response):
    return response.json()


def count(stamp):
    return Stamp.objects.get(pk=stamp.pk).count


def last(stamp):
    return Stamp.history.filter(id=stamp.pk).order_by("-history_id").first()


@pytest.fixture
def stamp3(card, customer):
    return factories.StampFactory(card=card, customer=customer, count=3)


def test_create_returns_the_new_stamp_idx(stamp_api, card, customer, partner):
    today = timezone.localdate()
    response = stamp_api.call(
        "POST",
        "/api/stamp/v1/create",
        {
            "cardIdx": card.pk,
            "customer": customer.member_id,
            "strtYmd": today.isoformat(),
            "endYmd": (today + dt.timedelta(days=30)).strftime("%Y%m%d"),
            "activeYn": "Y",
            "memo": "welcome",
            "userId": "u-77",
            "userNm": "Kim",
            "userPhnno": "010",
            "userEml": "kim@example.com",
        },
    )
    assert response.status_code == 200
    payload = body(response)
    assert (payload["code"], payload["message"]) == (0, "")
    stamp = Stamp.objects.get(pk=payload["result"])
    assert (stamp.customer, stamp.card, stamp.external_user_id, stamp.count) == (
        customer,
        card,
        "u-77",
        0,
    )
    row = last(stamp)
    assert (row.history_user, row.channel, row.operation) == (
        partner.user,
        "stamp-api",
        "stamp_create",
    )


def test_create_finds_the_customer_by_email_too(stamp_api, card, customer):
    today = timezone.localdate().isoformat()
    response = stamp_api.call(
        "POST",
        "/api/stamp/v1/create",
        {
            "cardIdx": str(card.pk),
            "customer": customer.email.upper(),
            "strtYmd": today,
            "endYmd": today,
        },
    )
    assert body(response)["code"] == 0
    assert Stamp.objects.get(pk=body(response)["result"]).customer == customer


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cardIdx": 999999}, "cardIdx: stamp card not found"),
        ({"customer": "nobody@example.com"}, "customer: customer not found"),
        ({"strtYmd": "2026-13-01"}, "strtYmd: must be a date written YYYY-MM-DD"),
        ({"endYmd": "2000-01-01"}, "endYmd: must not be before strtYmd"),
        ({"activeYn": "maybe"}, 'activeYn: must be "Y" or "N"'),
    ],
)
def test_create_refusals_name_the_field(stamp_api, card, customer, change, message):
    today = timezone.localdate().isoformat()
    request = {"cardIdx": card.pk, "customer": customer.email, "strtYmd": today, "endYmd": today}
    response = stamp_api.call("POST", "/api/stamp/v1/create", {**request, **change})
    assert (response.status_code, body(response)) == (
        400,
        {"code": 400, "message": message, "result": None},
    )
    assert not Stamp.objects.exists()


def test_add_increments_and_is_attributed_to_the_partner(stamp_api, stamp3, partner):
    response = stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp3.pk})
    assert (response.status_code, body(response)) == (
        200,
        {"code": 0, "message": "", "result": None},
    )
    assert count(stamp3) == 4
    row = last(stamp3)
    assert (row.history_user, row.channel, row.operation) == (
        partner.user,
        "stamp-api",
        "stamp_add",
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"active": False}, 1003),
        ({"start_date": dt.date(2001, 1, 1), "end_date": dt.date(2001, 2, 1)}, 1004),
        ({"count": 10}, 1005),
        ({"redeemed": True}, 1006),
    ],
)
def test_add_business_refusals_are_http_200_with_a_code(stamp_api, card, customer, fields, code):
    stamp = factories.StampFactory(card=card, customer=customer, **fields)
    response = stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk})
    assert response.status_code == 200
    assert body(response)["code"] == code and body(response)["result"] is None
    assert body(response)["message"]
    assert count(stamp) == stamp.count


def test_unknown_stamp_is_1001(stamp_api):
    response = stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": 987654})
    assert (response.status_code, body(response)["code"]) == (200, 1001)


def test_remove_decrements_with_the_reason_in_history(stamp_api, stamp3, partner):
    response = stamp_api.call(
        "PUT", "/api/stamp/v1/remove", {"stampIdx": stamp3.pk, "reason": "double scan"}
    )
    assert body(response) == {"code": 0, "message": "", "result": None}
    assert count(stamp3) == 2
    row = last(stamp3)
    assert (row.history_user, row.channel, row.history_change_reason, row.operation) == (
        partner.user,
        "stamp-api",
        "double scan",
        "stamp_remove",
    )


def test_remove_at_zero_changes_nothing_and_returns_1002(stamp_api, stamp):
    response = stamp_api.call("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp.pk})
    assert (response.status_code, body(response)["code"]) == (200, 1002)
    assert count(stamp) == 0 and Stamp.history.filter(id=stamp.pk).count() == 1


def test_removals_are_capped_per_stamp_per_day(stamp_api, card, customer, settings):
    settings.STAMP_REMOVALS_PER_STAMP_PER_DAY = 2
    stamp = factories.StampFactory(card=card, customer=customer, count=5)
    codes = [
        body(stamp_api.call("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp.pk}))["code"]
        for _ in range(3)
    ]
    assert codes == [0, 0, 1007]
    assert count(stamp) == 3


def test_remove_replays_an_idempotency_key_and_refuses_it_for_another_body(stamp_api, stamp3):
    headers = {"Idempotency-Key": "remove-once-1"}
    first = stamp_api.call("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp3.pk}, headers=headers)
    again = stamp_api.call("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp3.pk}, headers=headers)
    assert body(first) == body(again) == {"code": 0, "message": "", "result": None}
    assert again["Idempotent-Replayed"] == "true"
    assert count(stamp3) == 2
    other = stamp_api.call(
        "PUT", "/api/stamp/v1/remove", {"stampIdx": stamp3.pk, "reason": "x"}, headers=headers
    )
    assert (other.status_code, body(other)["code"]) == (422, 1008)
    assert count(stamp3) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_an_invalid_idempotency_key_is_400(stamp_api, stamp3, key):
    response = stamp_api.call(
        "PUT", "/api/stamp/v1/remove", {"stampIdx": stamp3.pk}, headers={"Idempotency-Key": key}
    )
    assert (response.status_code, body(response)["code"]) == (400, 400)
    assert count(stamp3) == 3


def test_a_refused_request_does_not_use_up_its_idempotency_key(stamp_api, card, customer):
    stamp = factories.StampFactory(card=card, customer=customer, count=10)
    headers = {"Idempotency-Key": "add-later"}
    refused = stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk}, headers=headers)
    assert body(refused)["code"] == 1005
    services.stamp_update(actor=None, channel=Channel.COMMAND, stamp=stamp, count=9, reason="fix")
    done = stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp.pk}, headers=headers)
    assert body(done)["code"] == 0 and count(stamp) == 10


def test_validate_returns_the_stamp(stamp_api, stamp3, card):
    response = stamp_api.call("GET", "/api/stamp/v1/validate", params={"stampIdx": stamp3.pk})
    result = body(response)["result"]
    assert body(response)["code"] == 0
    assert {
        k: result[k]
        for k in (
            "stampIdx",
            "cardIdx",
            "cardNm",
            "stamps",
            "maxStamps",
            "activeYn",
            "useYn",
            "userId",
        )
    } == {
        "stampIdx": stamp3.pk,
        "cardIdx": card.pk,
        "cardNm": card.name,
        "stamps": 3,
        "maxStamps": 10,
        "activeYn": "Y",
        "useYn": "N",
        "userId": "",
    }
    assert result["strtYmd"] == stamp3.start_date.isoformat()
    dt.datetime.strptime(result["regYmdt"], "%Y-%m-%d %H:%M:%S")


def test_validate_of_an_unknown_stamp_has_a_null_result(stamp_api):
    response = stamp_api.call("GET", "/api/stamp/v1/validate", params={"stampIdx": 424242})
    assert (body(response)["code"], body(response)["result"]) == (1001, None)


def test_update_setting_stamps_is_an_audited_correction(stamp_api, stamp3, partner):
    response = stamp_api.call(
        "PUT",
        "/api/stamp/v1/update",
        {
            "stampIdx": stamp3.pk,
            "stamps": 1,
            "useYn": "Y",
            "memo": "fixed",
            "reason": "double",
        },
    )
    assert body(response)["code"] == 0
    stamp3.refresh_from_db()
    assert (stamp3.count, stamp3.redeemed, stamp3.memo) == (1, True, "fixed")
    row = last(stamp3)
    assert (row.operation, row.history_change_reason, row.history_user) == (
        "stamp_set_count",
        "double",
        partner.user,
    )


def test_update_above_the_maximum_is_1005(stamp_api, stamp3):
    response = stamp_api.call("PUT", "/api/stamp/v1/update", {"stampIdx": stamp3.pk, "stamps": 11})
    assert body(response)["code"] == 1005 and count(stamp3) == 3


def test_delete_hides_the_stamp_and_keeps_its_history(stamp_api, stamp3):
    response = stamp_api.call("DELETE", "/api/stamp/v1/delete", params={"stampIdx": stamp3.pk})
    assert body(response)["code"] == 0
    assert (
        body(stamp_api.call("GET", "/api/stamp/v1/validate", params={"stampIdx": stamp3.pk}))[
            "code"
        ]
        == 1001
    )
    assert Stamp.objects.filter(pk=stamp3.pk, active=False).exists()
    assert last(stamp3).operation == "stamp_deactivate"


@pytest.mark.parametrize(
    "authorization",
    [None, "APIKey wrong-key", "Token {key}", "Bearer {key}", "APIKey", "APIKey a b"],
)
def test_missing_or_wrong_api_key_is_401_in_the_envelope(partner, stamp3, authorization):
    client = KeyClient("APIKey", partner.credentials.api_key)
    if authorization is None:
        client.auth = ""
    else:
        client.auth = authorization.format(key=partner.credentials.api_key)
    response = client.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp3.pk})
    assert response.status_code == 401
    assert body(response)["code"] == 401 and body(response)["result"] is None
    assert count(stamp3) == 3


def test_a_deactivated_partner_is_refused(stamp_api, partner, stamp3):
    partner.active = False
    with audited(actor=None, channel=Channel.COMMAND):
        partner.save()
    assert stamp_api.call("PUT", "/api/stamp/v1/add", {"stampIdx": stamp3.pk}).status_code == 401
