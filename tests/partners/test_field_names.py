"""Services name the fields they refuse by the model's names; each API says them in its own
wire names (the Stamp API's strtYmd/endYmd/stamps, the Points API's deductPoints and
yggRedemptionId), so no service knows any API's spelling."""

import datetime as dt

import pytest

from ledger import services
from loyalty.audit import Channel
from loyalty.errors import InvalidInput
from tests import factories

pytestmark = pytest.mark.django_db

JAN, DEC = dt.date(2026, 1, 1), dt.date(2026, 12, 31)


def refused_field(call) -> str:
    with pytest.raises(InvalidInput) as refused:
        call()
    return refused.value.field


def test_stamp_services_name_model_fields(partner, card, customer, stamp):
    assert (
        refused_field(
            lambda: services.stamp_create(
                actor=partner.user,
                channel=Channel.STAMP_API,
                card=card,
                customer=customer,
                start_date=DEC,
                end_date=JAN,
            )
        )
        == "end_date"
    )
    update = dict(actor=partner.user, channel=Channel.STAMP_API, stamp=stamp)
    assert refused_field(lambda: services.stamp_update(**update, count=-1)) == "count"
    assert refused_field(lambda: services.stamp_update(**update, end_date=dt.date(2000, 1, 1))) == (
        "end_date"
    )


def test_point_services_name_model_fields(partner, customer):
    deduct = dict(
        actor=partner.user, channel=Channel.POINTS_API, partner=partner, customer=customer
    )
    assert refused_field(lambda: services.point_deduct(**deduct, points=0, redemption_id="r")) == (
        "points"
    )
    assert refused_field(lambda: services.point_deduct(**deduct, points=1, redemption_id="")) == (
        "redemption_id"
    )


def test_the_stamp_api_still_answers_in_its_wire_names(stamp_api, card, customer):
    body = {"cardIdx": card.pk, "customer": customer.email, "strtYmd": "2026-12-31"}
    response = stamp_api.call("POST", "/api/stamp/v1/create", {**body, "endYmd": "2026-01-01"})
    assert response.status_code == 400
    assert response.json() == {
        "code": 400,
        "message": "endYmd: must not be before strtYmd",
        "result": None,
    }
    stamp = factories.StampFactory(card=card, customer=customer)
    update = {"stampIdx": stamp.pk, "endYmd": "2000-01-01"}
    response = stamp_api.call("PUT", "/api/stamp/v1/update", update)
    assert response.json()["message"] == "endYmd: must not be before strtYmd"
