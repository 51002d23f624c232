"""SSRF defence: refused addresses at save time and again at delivery time, after the
name is resolved (a DNS change cannot point an endpoint at 127.0.0.1)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from ledger.models.webhooks import WebhookDelivery
from ledger.webhooks import addresses, services, worker
from loyalty.errors import InvalidInput
from tests.webhooks.conftest import make_event


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - a refused address, not a bind
        "224.0.0.251",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
    ],
)
def test_refused_addresses(address):
    assert addresses.refused_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses(address):
    assert addresses.refused_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/",
        "gopher://example.com/",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
        "http:///nohost",
    ],
)
def test_refused_when_saved(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(InvalidInput) as raised:
        addresses.validate_url(url)
    assert raised.value.field == "url"


def test_the_setting_allows_local_receivers(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert addresses.validate_url("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"


@pytest.mark.django_db(transaction=True)
def test_a_name_that_now_resolves_to_loopback_is_refused_at_delivery(
    receiver, webhook_settings, customer, monkeypatch
):
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    # Saved while the name looked public (no DNS at save time; it is checked on delivery).
    webhook_settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    services.endpoint_create(
        merchant_id=customer.merchant_id,
        url=f"http://hooks.example.com:{port}/hook",
        event_types=["*"],
    )
    looked_up = []
    real = socket.getaddrinfo

    def rebinding(host, port_, *args, **kwargs):
        if host == "127.0.0.1":  # the connection to the checked address: no lookup
            return real(host, port_, *args, **kwargs)
        looked_up.append(host)
        assert host == "hooks.example.com"  # never the outside network in tests
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    make_event(customer.merchant, customer)
    worker.run(burst=True)
    assert looked_up and receiver.requests == []
    d = WebhookDelivery.objects.get()
    assert d.status == "failed" and d.last_status_code is None
    assert "refused" in d.last_error and "127.0.0.1" in d.last_error

    # With the setting on, the same name reaches the (local) receiver, on the checked address.
    webhook_settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    services.delivery_redeliver(d)
    worker.run(burst=True)
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["headers"]["host"] == f"hooks.example.com:{port}"
