"""Admin pages for webhooks: create shows the secret once, rotate, deliveries, redeliver;
Auditors read and change nothing."""

from __future__ import annotations

import pytest
from django.utils import timezone

from ledger.models.webhooks import WebhookDelivery, WebhookEndpoint
from partners.credentials import decrypt_secret
from tests.webhooks.conftest import webhook_world

ADD = "/admin/ledger/webhookendpoint/add/"


def test_create_shows_the_secret_once_on_a_no_store_page(superuser_client, merchant):
    response = superuser_client.post(
        ADD,
        {
            "merchant": merchant.pk,
            "url": "https://hooks.example.com/crm",
            "event_types": ["balance.credited", "points.reverted"],
            "description": "CRM",
        },
    )
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    secret = decrypt_secret(endpoint.secret_encrypted)
    assert secret.encode() in response.content
    assert endpoint.event_types == ["balance.credited", "points.reverted"]
    page = superuser_client.get(f"/admin/ledger/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and secret.encode() not in page.content
    assert b"Rotate secret" in page.content


@pytest.mark.parametrize(
    ("url", "types"),
    [("ftp://x.example.com/", ["*"]), ("http://127.0.0.1/", ["*"]), ("https://a.example/", [])],
)
def test_bad_input_is_a_form_error_and_creates_nothing(superuser_client, merchant, url, types):
    response = superuser_client.post(
        ADD, {"merchant": merchant.pk, "url": url, "event_types": types}
    )
    assert response.status_code == 200 and b"errornote" in response.content
    assert not WebhookEndpoint.objects.exists()


def test_rotate_shows_the_new_secret_once(superuser_client, merchant, customer):
    endpoint = webhook_world(merchant, customer)["webhook_endpoint"]
    old = endpoint.secret_encrypted
    url = f"/admin/ledger/webhookendpoint/{endpoint.pk}/rotate-secret/"
    assert superuser_client.get(url).status_code == 200
    response = superuser_client.post(url, {"post": "yes"})
    assert "no-store" in response["Cache-Control"]
    endpoint.refresh_from_db()
    assert endpoint.previous_secret_encrypted == old
    assert decrypt_secret(endpoint.secret_encrypted).encode() in response.content


def test_redeliver_action(superuser_client, merchant, customer):
    delivery = webhook_world(merchant, customer)["webhook_delivery"]
    listing = superuser_client.get("/admin/ledger/webhookdelivery/")
    assert listing.status_code == 200 and delivery.event.event_id.encode() in listing.content
    superuser_client.post(
        "/admin/ledger/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at <= timezone.now()


def test_auditors_read_everything_and_change_nothing(auditor_client, merchant, customer):
    world = webhook_world(merchant, customer)
    endpoint, delivery = world["webhook_endpoint"], world["webhook_delivery"]
    assert auditor_client.get("/admin/ledger/webhookendpoint/").status_code == 200
    page = auditor_client.get(f"/admin/ledger/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and b"Rotate secret" not in page.content
    assert b"whsec_" not in page.content
    assert (
        auditor_client.get(f"/admin/ledger/webhookdelivery/{delivery.pk}/change/").status_code
        == 200
    )
    assert auditor_client.get(ADD).status_code == 403
    rotate = f"/admin/ledger/webhookendpoint/{endpoint.pk}/rotate-secret/"
    assert auditor_client.post(rotate, {"post": "yes"}).status_code == 403
    auditor_client.post(
        "/admin/ledger/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    assert WebhookDelivery.objects.get().status == "failed"
    changed = auditor_client.post(
        f"/admin/ledger/webhookendpoint/{endpoint.pk}/change/",
        {"url": "https://evil.example/", "event_types": ["*"], "active": "on"},
    )
    assert changed.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.com/in"
