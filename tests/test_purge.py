import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from loyalty.models import IdempotencyKey
from partners.models import SignedRequestId

pytestmark = pytest.mark.django_db


def test_purge_expired_keeps_what_can_still_matter(partner, support):
    now = timezone.now()
    for age, key in ((dt.timedelta(hours=25), "old"), (dt.timedelta(hours=23), "young")):
        row = IdempotencyKey.objects.create(
            owner=support,
            key=key,
            fingerprint="f",
            method="POST",
            path="/",
            response_status=200,
            response_body={},
        )
        IdempotencyKey.objects.filter(pk=row.pk).update(created=now - age)
    for age in (dt.timedelta(minutes=20), dt.timedelta(minutes=5)):
        row = SignedRequestId.objects.create(
            partner=partner,
            request_id=f"0198{int(age.total_seconds()):04d}-0000-7000-8000-000000000000",
        )
        SignedRequestId.objects.filter(pk=row.pk).update(created=now - age)
    out = StringIO()
    call_command("purge_expired", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"idempotency_keys": 1, "request_ids": 1}
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]
    assert SignedRequestId.objects.count() == 1
