"""SSRF defence: which webhook URLs and resolved addresses a delivery may reach.

An endpoint's URL is checked when it is saved and again at every delivery, after resolving
its name: the delivery then connects to the address that was checked (`safe_addresses`), so
a DNS answer that changes between the check and the connection cannot reach 127.0.0.1.
`WEBHOOK_ALLOW_PRIVATE_URLS` lifts the address check (local receivers in tests and demos).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from loyalty.errors import InvalidInput

METADATA = ipaddress.ip_address("169.254.169.254")  # cloud metadata (also link-local)


class RefusedAddress(Exception):
    """The URL names (or resolves to) an address webhooks must not reach."""


def allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_URLS", False))


def refused_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `ip` is refused (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends reach the IPv4 address they embed.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            reason = refused_reason(embedded)
            if reason:
                return reason
    checks = [
        (ip == METADATA, "a cloud metadata address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),  # e.g. 100.64.0.0/10 (carrier NAT)
    ]
    for refused, reason in checks:
        if refused:
            return reason
    return None


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; InvalidInput("url") otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput("url", f"not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url", "only http and https URLs are accepted")
    if not parts.hostname:
        raise InvalidInput("url", "the URL has no host")
    if parts.username or parts.password:
        raise InvalidInput("url", "credentials in the URL are not accepted")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _literal(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal is itself)."""
    if _literal(host) is not None:
        return [str(_literal(host))]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def safe_addresses(host: str, port: int) -> list[str]:
    """The addresses a delivery may connect to; RefusedAddress if any answer is refused
    (a name that resolves to one public and one private address is refused as a whole)."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise RefusedAddress(f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise RefusedAddress(f"{host} resolves to no address")
    if not allow_private():
        for address in addresses:
            reason = refused_reason(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason:
                raise RefusedAddress(f"{host} resolves to {address}: {reason}")
    return addresses


def validate_url(url: str) -> str:
    """Check a URL when an endpoint is saved: http(s), a host, no refused address literal
    and no `localhost` name. Other names are not resolved here (no DNS in a request): every
    delivery resolves and checks them."""
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidInput("url", "a URL of at most 2000 characters is required")
    _scheme, host, _port = split_url(url)
    if allow_private():
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidInput("url", f"{host} is a loopback address")
    literal = _literal(host)
    if literal is not None:
        reason = refused_reason(literal)
        if reason:
            raise InvalidInput("url", f"{host} is {reason}")
    return url
