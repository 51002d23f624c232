"""Staff API for webhook endpoints and deliveries: shapes, permissions, refusals."""

from __future__ import annotations

import base64

import pytest
from django.utils import timezone

from ledger.models.webhooks import WebhookDelivery, WebhookEndpoint
from partners.credentials import decrypt_secret
from tests.api.conftest import StaffClient, token_for
from tests.webhooks.conftest import make_event


@pytest.fixture
def api_admin(superuser) -> StaffClient:
    return StaffClient(token_for(superuser))


def create(client, owner, **body):
    body = {"url": "https://hooks.example.com/in", "merchant": owner.pk, **body}
    body.setdefault("event_types", ["*"])
    return client.call("POST", "webhook-endpoints/", body)


def test_create_shows_the_secret_once_and_stores_it_encrypted(api_admin, merchant):
    response = create(api_admin, merchant, event_types=["balance.credited"], description="CRM")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Cache-Control"] == "no-store"
    assert set(body) >= {"id", "url", "merchant", "event_types", "active", "secret"}
    assert body["merchant"] == merchant.pk and body["active"] is True
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert secret not in endpoint.secret_encrypted
    assert decrypt_secret(endpoint.secret_encrypted) == secret
    again = api_admin.call("GET", f"webhook-endpoints/{body['id']}/").json()
    assert "secret" not in again and again["event_types"] == ["balance.credited"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "http://127.0.0.1:8000/"}, "url"),
        ({"url": "http://localhost/"}, "url"),
        ({"url": "http://10.0.0.5/"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "http://[::1]/"}, "url"),
        ({"url": "http://[::ffff:127.0.0.1]/"}, "url"),
        ({"url": "http://224.0.0.1/"}, "url"),
        ({"event_types": ["balance.exploded"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"merchant": 999999}, "merchant"),
    ],
)
def test_bad_input_is_a_400_and_creates_nothing(api_admin, merchant, body, field):
    response = create(api_admin, merchant, **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert set(response.json()) == {"code", "message", "fields"}
    assert not WebhookEndpoint.objects.exists()


def test_patch_edits_and_validates(api_admin, merchant):
    endpoint_id = create(api_admin, merchant).json()["id"]
    path = f"webhook-endpoints/{endpoint_id}/"
    response = api_admin.call("PATCH", path, {"active": False, "event_types": ["points.reverted"]})
    assert response.status_code == 200, response.json()
    assert response.json()["active"] is False
    assert response.json()["event_types"] == ["points.reverted"]
    assert api_admin.call("PATCH", path, {"url": "http://192.168.1.1/"}).status_code == 400
    other = create(api_admin, merchant).json()["merchant"]
    assert api_admin.call("PATCH", path, {"merchant": other + 1}).status_code == 400
    assert WebhookEndpoint.objects.get(pk=endpoint_id).url == "https://hooks.example.com/in"


def test_rotate_returns_a_new_secret(api_admin, merchant):
    created = create(api_admin, merchant).json()
    response = api_admin.call("POST", f"webhook-endpoints/{created['id']}/rotate-secret/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = response.json()["secret"]
    assert secret.startswith("whsec_") and secret != created["secret"]
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert decrypt_secret(endpoint.previous_secret_encrypted) == created["secret"]


def test_readers_read_and_never_manage(api_admin, api_support, api_auditor, merchant, customer):
    created = create(api_admin, merchant).json()
    delivery = WebhookDelivery.objects.create(
        endpoint_id=created["id"],
        event=make_event(merchant, customer),
        customer=customer,
        customer_sequence=1,
        event_type="balance.credited",
        status="failed",
        next_attempt_at=timezone.now(),
    )
    for client in (api_support, api_auditor):
        listed = client.call("GET", "webhook-endpoints/")
        assert listed.status_code == 200
        assert "secret" not in listed.json()["results"][0]
        assert client.call("GET", "webhook-deliveries/").status_code == 200
        assert create(client, merchant).status_code == 403
        path = f"webhook-endpoints/{created['id']}/"
        assert client.call("PATCH", path, {"active": False}).status_code == 403
        assert client.call("POST", path + "rotate-secret/").status_code == 403
        redeliver = f"webhook-deliveries/{delivery.pk}/redeliver/"
        assert client.call("POST", redeliver).status_code == 403
    assert WebhookDelivery.objects.get().status == "failed"
    assert StaffClient().call("GET", "webhook-endpoints/").status_code == 401


def test_deliveries_filter_and_redeliver(api_admin, merchant, customer):
    endpoint_id = create(api_admin, merchant).json()["id"]
    event = make_event(merchant, customer)
    delivery = WebhookDelivery.objects.create(
        endpoint_id=endpoint_id,
        event=event,
        customer=customer,
        customer_sequence=1,
        event_type=event.type,
        status="failed",
        attempts=8,
        cycle_attempts=7,
        last_status_code=500,
        next_attempt_at=timezone.now(),
    )
    listed = api_admin.call("GET", f"webhook-deliveries/?event={event.event_id}&status=failed")
    (row,) = listed.json()["results"]
    assert row["event"] == event.event_id and row["endpoint"] == endpoint_id
    assert {"id", "type", "status", "attempts", "last_status_code", "last_error"} <= set(row)
    assert api_admin.call("GET", "webhook-deliveries/?status=pending").json()["results"] == []
    assert api_admin.call("GET", "webhook-deliveries/?status=bogus").status_code == 400
    assert api_admin.call("GET", "webhook-deliveries/?endpoint=abc").status_code == 400
    response = api_admin.call("POST", f"webhook-deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 200 and response.json()["status"] == "pending"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.cycle_attempts) == ("pending", 8, 0)
    # Pending already: nothing to queue.
    again = api_admin.call("POST", f"webhook-deliveries/{delivery.pk}/redeliver/")
    assert again.status_code == 409
