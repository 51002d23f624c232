"""One redaction policy in the history reader: no consumer of history shows a partner's
credentials, not even right after a rotation, yet each shows that they changed."""

import json

import pytest
from django.test import Client

from ledger.history import REDACTED
from loyalty.audit import Channel
from partners.models import Partner
from partners.services import partner_rotate_credentials

pytestmark = pytest.mark.django_db


def _body(response) -> str:
    assert response.status_code == 200, response.status_code
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.fixture
def rotated(partner, support):
    old = partner.credentials
    new = partner_rotate_credentials(
        actor=support, channel=Channel.ADMIN, partner=partner, reason="Rotated after a leak"
    )
    partner.refresh_from_db()
    secrets = {
        old.hmac_key,
        new.hmac_key,
        old.api_key[:12],  # the stored api_key_prefix, before and after
        new.api_key[:12],
        old.api_key,
        new.api_key,
        old.hmac_secret,
        new.hmac_secret,
        partner.api_key_hash,
        partner.hmac_secret_encrypted,
    }
    return partner, secrets


def test_no_history_consumer_shows_partner_credentials_after_a_rotation(
    rotated, auditor, api_auditor
):
    partner, secrets = rotated
    admin = Client()
    admin.force_login(auditor)
    pages = {
        "admin audit log": admin.get("/admin/audit-log/", {"model": "partner"}),
        "admin audit log CSV": admin.get("/admin/audit-log.csv", {"model": "partner"}),
        "admin object history": admin.get(f"/admin/partners/partner/{partner.pk}/history/"),
        "staff API history": api_auditor.get(f"partners/{partner.pk}/history/"),
        "staff API history page": api_auditor.get(f"partners/{partner.pk}/history/", {"limit": 5}),
        "staff API audit log": api_auditor.get("audit-log/", {"model": "partner"}),
        "staff API audit log CSV": api_auditor.get(
            "audit-log/", {"model": "partner", "format": "csv"}
        ),
    }
    for name, response in pages.items():
        body = _body(response)
        assert "Rotated after a leak" in body, name  # the rotation is there
        leaked = [secret for secret in secrets if secret in body]
        assert leaked == [], f"{name} shows {leaked}"


def test_a_redacted_field_still_shows_that_it_changed(rotated, api_auditor):
    partner, _ = rotated
    versions = json.loads(_body(api_auditor.get(f"partners/{partner.pk}/history/")))
    rotation, created = versions[0], versions[-1]
    changes = {c["field"]: (c["old"], c["new"]) for c in rotation["changes"]}
    assert changes == {"api_key_prefix": (REDACTED, REDACTED), "hmac_key": (REDACTED, REDACTED)}
    created_changes = {c["field"]: (c["old"], c["new"]) for c in created["changes"]}
    assert created_changes["hmac_key"] == (None, REDACTED)  # set from nothing: still masked
    assert created_changes["name"] == (None, "Partner A")  # other fields are shown as ever


def test_the_redacted_fields_are_declared_once_on_the_model():
    assert set(Partner.history_redacted_fields) >= {
        "hmac_key",
        "api_key_prefix",
        "api_key_hash",
        "hmac_secret_encrypted",
    }
