import pytest

from loyalty.audit import Channel
from loyalty.errors import InvalidInput
from partners import credentials
from partners.models import Partner
from partners.services import partner_create, partner_rotate_credentials

pytestmark = pytest.mark.django_db


def test_partner_gets_a_service_user_named_after_it(partner):
    assert partner.user.username == "partner:Partner A"
    assert partner.history.first().operation == "partner_create"


def test_rotation_replaces_every_secret(partner, support):
    old = partner.credentials
    new = partner_rotate_credentials(
        actor=support, channel=Channel.ADMIN, partner=partner, reason="leaked in a log"
    )
    partner.refresh_from_db()
    assert new.api_key != old.api_key and new.hmac_key != old.hmac_key
    assert credentials.api_key_matches(new.api_key, partner.api_key_hash)
    assert not credentials.api_key_matches(old.api_key, partner.api_key_hash)
    assert credentials.decrypt_secret(partner.hmac_secret_encrypted) == new.hmac_secret
    row = partner.history.first()
    assert (row.history_user, row.history_change_reason) == (support, "leaked in a log")


def test_partner_needs_a_merchant_and_a_unique_name(merchant, partner):
    with pytest.raises(InvalidInput):
        partner_create(actor=None, channel=Channel.COMMAND, name="Lonely", merchants=[])
    with pytest.raises(InvalidInput):
        partner_create(actor=None, channel=Channel.COMMAND, name="Partner A", merchants=[merchant])
    assert Partner.objects.count() == 1
