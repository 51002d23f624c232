"""The contract's test vectors, and JavaScript's JSON.stringify number and key rules."""

import json

import pytest

from partners.signing import canonical_json, js_number, sign

SECRET = "ygg-shared-secret-for-docs"
REQUEST_ID = "01987d64-6519-747b-9200-beba98700464"
BODY = (
    '{"yggRedemptionId":"0f8fad5b-d9cb-469f-a165-70867728950e",'
    '"address":"0xAbCd000000000000000000000000000000000001","deductPoints":1000}'
)


def test_contract_request_vector():
    canonical = canonical_json(json.loads(BODY))
    assert canonical == (
        '{"address":"0xAbCd000000000000000000000000000000000001","deductPoints":1000,'
        '"yggRedemptionId":"0f8fad5b-d9cb-469f-a165-70867728950e"}'
    )
    assert sign(SECRET, "POST", "/deduct-points-by-address", REQUEST_ID, canonical) == (
        "2d4c0d2f4d52835cebbc5f2a5aac06c0d383a65be656a98ff62b7cbb07f8058d"
    )


def test_contract_response_vector():
    canonical = canonical_json(json.loads('{"success":true,"partnerTransactionId":"txn_01JDEMO"}'))
    assert sign(SECRET, "POST", "/deduct-points-by-address", REQUEST_ID, canonical) == (
        "0d83b4ec6936f29563b26face23d4005101ae95cf16e3229ca57128bace6e840"
    )


def test_contract_get_vector_signs_an_empty_body_and_no_query():
    assert sign(SECRET, "GET", "/get-points-by-address", REQUEST_ID, "") == (
        "5c7536082fc3ee06556f5d736c2dd0a0bffb5e5001071c1d09843eb9f65eef16"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.000000", "5"),
        ("0.100000", "0.1"),
        ("1e21", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("123456789012345680000", "123456789012345680000"),
        ("1e-7", "1e-7"),
        ("1.5e-7", "1.5e-7"),
        ("0.000001", "0.000001"),
        ("-0.0", "0"),
        ("-2.50", "-2.5"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("5e-324", "5e-324"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("9007199254740993", "9007199254740992"),
        ("-12", "-12"),
        ("1E+2", "100"),
    ],
)
def test_numbers_are_written_as_javascript_writes_them(text, expected):
    assert js_number(json.loads(text)) == expected


def test_keys_are_sorted_recursively_in_utf16_order_and_text_kept_as_is():
    value = json.loads(
        '{"b":{"z":1,"a":[{"y":true,"x":null}]},"a":"é\\n\\u0001\\"","\\ud83d\\ude00":1,"\\uffff":2}'
    )
    assert canonical_json(value) == (
        '{"a":"é\\n\\u0001\\"","b":{"a":[{"x":null,"y":true}],"z":1},"😀":1,"\uffff":2}'
    )


def test_lone_surrogates_are_escaped_like_well_formed_stringify():
    assert canonical_json(json.loads('"\\ud800x"')) == '"\\ud800x"'
