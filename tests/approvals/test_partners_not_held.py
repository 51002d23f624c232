"""Partner APIs are never held: policies and limits are for staff corrections only."""

from __future__ import annotations

import json

import pytest

from ledger import approvals
from ledger.models import Approval, ApprovalPolicy, StaffLimit, Stamp
from loyalty.audit import Channel
from tests import factories
from tests.partners.conftest import KeyClient

pytestmark = pytest.mark.django_db


def test_a_stamp_api_removal_over_every_policy_and_limit_is_applied(partner, card, customer):
    command = {"actor": None, "channel": Channel.COMMAND}
    approvals.setting_save(
        ApprovalPolicy(), **command, merchant=card.merchant, kind="deduct_stamp", threshold=1
    )
    approvals.setting_save(StaffLimit(), **command, user=partner.user, kind="*", daily_count=0)
    stamp = factories.StampFactory(card=card, customer=customer, count=3)
    client = KeyClient("APIKey", partner.credentials.api_key)
    response = client.call("PUT", "/api/stamp/v1/remove", {"stampIdx": stamp.pk})
    assert json.loads(response.content)["code"] == 0
    assert Stamp.objects.get(pk=stamp.pk).count == 2
    assert not Approval.objects.exists()
